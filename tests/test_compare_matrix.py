"""The support matrix generator, and that the checked-in docs/support-matrix.md is current."""

from __future__ import annotations

import json

from netbabel.compare import matrix


def _result(directory, group, feature, column, cell):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{abs(hash((group, feature, column)))}.json").write_text(
        json.dumps({"group": group, "feature": feature, "column": column, "cell": cell, "detail": "d"}))


def test_generate_merge_and_check(tmp_path, capsys):
    results, docs = tmp_path / "results", tmp_path / "docs"
    _result(results, "cell model", "iaf_psc_exp", "nest", "reference")
    _result(results, "cell model", "iaf_psc_exp", "netpyne", "exact")
    _result(results, "cell model", "izhikevich", "neuroml", "refused")
    assert matrix.main(["--results", str(results), "--docs", str(docs)]) == 0
    text = (docs / "support-matrix.md").read_text()
    assert "| feature | nest | netpyne | neuroml |" in text
    assert "| `iaf_psc_exp` | reference | exact | - |" in text
    assert "| `izhikevich` | - | - | refused |" in text
    assert matrix.main(["--results", str(results), "--docs", str(docs), "--check"]) == 0
    # a new observation that contradicts the matrix makes --check fail ...
    _result(results, "cell model", "iaf_psc_exp", "netpyne", "statistical")
    assert matrix.main(["--results", str(results), "--docs", str(docs), "--check"]) == 1
    assert "matrix says exact, observed statistical" in capsys.readouterr().err
    # ... and so does a hand-edited page; regenerating merges and repairs both
    assert matrix.main(["--results", str(results), "--docs", str(docs)]) == 0
    (docs / "support-matrix.md").write_text("edited")
    assert matrix.main(["--results", str(tmp_path / "none"), "--docs", str(docs), "--check"]) == 1


def test_checked_in_page_is_the_rendering_of_the_checked_in_json():
    page = matrix.DOCS / "support-matrix.md"
    data = matrix.load_matrix(matrix.DOCS / "support-matrix.json")
    assert data["cells"], "docs/support-matrix.json is empty: run the round-trip suite and the generator"
    assert page.read_text() == matrix.render(data)
