"""The description core: round trips, expressions, schema, info, convert between JSON and YAML."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from netbabel.cli import main
from netbabel.description import Description, load, read_data, save
from netbabel.description.catalogue import MODELS
from netbabel.description.expressions import ExpressionError, parse, resolve_parameters
from netbabel.description.schema import build_schema, render_pages
from netbabel.description.summary import summarize

ROOT = Path(__file__).resolve().parents[1]
BRUNEL = ROOT / "reference_models" / "brunel2000" / "brunel2000.json"
TINY = ROOT / "tests" / "data" / "tiny.json"


@pytest.mark.parametrize("source", [BRUNEL, TINY])
@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_load_save_round_trip(tmp_path, source, suffix):
    d = load(source)
    out = save(d, tmp_path / f"copy{suffix}")
    again = load(out)
    assert again == d
    assert read_data(out) == d.to_dict()


def test_yaml_and_json_hold_the_same_content(tmp_path):
    assert main(["convert", str(TINY), "-o", str(tmp_path / "t.yaml")]) == 0
    assert main(["convert", str(tmp_path / "t.yaml"), "-o", str(tmp_path / "t.json")]) == 0
    canonical = load(TINY).to_dict()  # fields at their default values are left out
    assert yaml.safe_load((tmp_path / "t.yaml").read_text()) == canonical
    assert json.loads((tmp_path / "t.json").read_text()) == canonical
    assert load(tmp_path / "t.json") == load(TINY)


def test_typed_objects_and_evaluation():
    d = load(BRUNEL)
    assert isinstance(d, Description)
    assert d.size("E") == 1000 and d.size("I") == 250
    assert d.value(d.projections[2].weight) == pytest.approx(-4.0)  # -g * J
    assert d.value("p_rate") == pytest.approx(4000.0)  # 1000 eta theta / (J CE tau_m) * CE
    assert d.cell_types["lif"].model == "iaf_psc_delta"
    tiny = load(TINY)
    w = tiny.projections[1].weight
    assert w.distribution == "normal" and tiny.value(w.mean) == -160.0 and w.bounds == "redraw"


def test_overrides_apply_to_nested_fields():
    d = load(BRUNEL, overrides=["parameters.order=10", "simulation.dt=0.05", "projections.0.delay=2.5"])
    assert d.size("E") == 40
    assert d.simulation.dt == 0.05
    assert d.projections[0].delay == 2.5


def test_parameters_resolve_in_dependency_order():
    assert resolve_parameters({"c": "a + b", "b": "2 * a", "a": 3}) == {"a": 3.0, "b": 6.0, "c": 9.0}


@pytest.mark.parametrize("text,value", [("sqrt(16) + 2**3", 12.0), ("max(1, min(5, 3))", 3.0),
                                        ("-exp(0) * pi / pi", -1.0), ("7 // 2 + 7 % 2", 4.0)])
def test_expression_arithmetic(text, value):
    assert parse(text).evaluate({}) == value


def test_expression_on_distance_arrays():
    import numpy as np

    out = parse("0.5 * exp(-d / 100)").evaluate({"d": np.array([0.0, 100.0])})
    assert np.allclose(out, [0.5, 0.5 / np.e])


@pytest.mark.parametrize("attack", ["9**9**9", "10**10**10**10", "__import__('os')", "().__class__.__bases__",
                                    "open('/etc/passwd')", "[x for x in ()]", "(lambda: 1)()", "a if b else c",
                                    "1 < 2", "'x' * 3", "exp(1, base=2)"])
def test_expression_attacks_refused_quickly(attack):
    start = time.perf_counter()
    with pytest.raises(ExpressionError):
        parse(attack).evaluate({"a": 1.0, "b": 1.0, "c": 1.0})
    assert time.perf_counter() - start < 0.05  # refused within milliseconds, not computed


def test_shipped_schema_is_current():
    shipped = json.loads((ROOT / "schema" / "network.schema.json").read_text())
    assert shipped == build_schema(), "run `netbabel schema --write`"
    for name, text in render_pages(shipped).items():
        assert (ROOT / "schema" / name).read_text() == text, f"schema/{name} is stale: run `netbabel schema --write`"


def _numeric_fields(node, path=""):
    if isinstance(node, dict):
        if node.get("type") in ("number", "integer") or any(o.get("type") == "number" for o in node.get("anyOf", [])):
            yield path, node
        for key, value in node.items():
            if key in ("anyOf", "if", "then", "else", "allOf", "items"):
                continue
            yield from _numeric_fields(value, f"{path}/{key}")


def test_every_numeric_field_has_unit_and_description():
    fields = list(_numeric_fields(build_schema()))
    assert len(fields) > 120
    missing = [path for path, spec in fields
               if path != "/$defs/Value" and ("x-unit" not in spec or not spec.get("description"))]
    assert missing == []


def test_catalogue_parameters_are_in_the_schema():
    defs = build_schema()["$defs"]
    for model, spec in MODELS.items():
        assert set(defs[f"params_{model}"]["properties"]) == set(spec.params)
    assert defs["params_iaf_psc_exp"]["properties"]["C_m"]["x-unit"] == "pF"
    assert defs["params_iaf_cond_exp"]["properties"]["g_L"]["x-unit"] == "nS"


def test_info_totals(capsys):
    assert main(["info", str(BRUNEL), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["populations"]["E"] == {"size": 1000, "cell_type": "lif", "model": "iaf_psc_delta", "annotations": {}}
    assert info["totals"]["neurons"] == 1250
    assert info["totals"]["synapses"] == 100 * 1250 + 25 * 1250
    assert [p["expected_synapses"] for p in info["projections"]] == [100000, 25000, 25000, 6250]
    assert main(["info", str(BRUNEL)]) == 0
    assert "totals: 2 populations, 1,250 neurons, 4 projections, 156,250.0 synapses" in capsys.readouterr().out


def test_info_expected_synapses_per_rule():
    doc = json.loads(TINY.read_text())
    doc["projections"].append({"source": "A", "target": "A", "rule": {"type": "all_to_all"}, "weight": 1.0,
                               "delay": 1.0, "autapses": False})
    doc["projections"].append({"source": "A", "target": "B", "rule": {"type": "fixed_total_number", "n": 33},
                               "weight": 1.0, "delay": 1.0})
    expected = [e["expected_synapses"] for e in summarize(Description.from_dict(doc))["projections"]]
    assert expected == [4 * 5, 0.5 * (5 * 20), 20 * 19, 33]


def test_validate_many_files(capsys):
    assert main(["validate", str(BRUNEL), str(TINY)]) == 0
    out = capsys.readouterr().out
    assert "brunel2000.json: valid" in out and "tiny.json: valid" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("netbabel 0.1")
