"""Invalid documents: exit status 2, the JSON pointer, a message a user understands, no output."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from netbabel.cli import main

DATA = Path(__file__).parent / "data"
TINY = json.loads((DATA / "tiny.json").read_text())


def _mutate(path: str, value, delete: bool = False) -> dict:
    doc = copy.deepcopy(TINY)
    keys = path.strip("/").split("/")
    node = doc
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    last = int(keys[-1]) if isinstance(node, list) else keys[-1]
    if delete:
        del node[last]
    else:
        node[last] = value
    return doc


# (id, document, expected pointer, expected message fragment)
CASES = [
    ("wrong-type-size", _mutate("/populations/A/size", [3]), "/populations/A/size", "is not of type"),
    ("negative-size", _mutate("/populations/A/size", -5), "/populations/A/size", "less than the minimum of 1"),
    ("zero-size-expression", _mutate("/parameters/N", 0), "/populations/A/size", "positive integer"),
    ("fractional-size", _mutate("/populations/B/size", "N / 3"), "/populations/B/size", "positive integer"),
    ("negative-indegree", _mutate("/projections/0/rule/indegree", -5), "/projections/0/rule/indegree",
     "-5 is less than the minimum of 0"),
    ("unknown-top-key", _mutate("/colour", "blue"), "/", "unknown key"),
    ("unknown-param", _mutate("/cell_types/exc_cell/params/tau_membrane", 10.0),
     "/cell_types/exc_cell/params", "tau_membrane"),
    ("unknown-cell-model", _mutate("/cell_types/exc_cell/model", "iaf_psc_banana"),
     "/cell_types/exc_cell/model", "iaf_psc_banana"),
    ("dangling-cell-type", _mutate("/populations/A/cell_type", "pyramid"), "/populations/A/cell_type",
     "undefined cell type 'pyramid'"),
    ("dangling-source", _mutate("/projections/0/source", "C"), "/projections/0/source", "undefined population 'C'"),
    ("dangling-synapse-type", _mutate("/projections/0/synapse_type", "ampa"), "/projections/0/synapse_type",
     "undefined synapse type 'ampa'"),
    ("dangling-input-target", _mutate("/inputs/0/target", "Z"), "/inputs/0/target", "undefined population 'Z'"),
    ("undefined-name", _mutate("/projections/0/weight", "w * gain"), "/projections/0/weight",
     "undefined name 'gain'"),
    ("circular-parameters", _mutate("/parameters", {"N": "M + 1", "M": "N * 2", "K": 4, "w": 1.0}),
     "/parameters/N", "circular parameter definition"),
    ("undefined-parameter", _mutate("/parameters/K", "KK / 2"), "/parameters/K", "undefined name 'KK'"),
    ("import-attack", _mutate("/parameters/w", "__import__('os').system('touch /tmp/netbabel_pwned')"),
     "/parameters/w", "not allowed"),
    ("class-attack", _mutate("/parameters/w", "().__class__"), "/parameters/w", "not allowed"),
    ("power-bomb", _mutate("/parameters/w", "9**9**9"), "/parameters/w", "arithmetic error"),
    ("long-expression", _mutate("/parameters/w", "1+" * 2000 + "1"), "/parameters/w", "at most 1000 characters"),
    ("nan-expression", _mutate("/parameters/w", "inf - inf"), "/parameters/w", "NaN"),
    ("multapse-impossible", _mutate("/projections/0/multapses", False) | {}, None, None),
    ("bernoulli-p-above-one", _mutate("/projections/1/rule/p", 1.5), "/projections/1/rule/p",
     "greater than the maximum of 1"),
    ("distribution-missing-sd", _mutate("/projections/1/weight", {"distribution": "normal", "mean": 1.0}),
     "/projections/1/weight", "'sd' is a required property"),
    ("bounds-without-policy", _mutate("/projections/1/weight", {"distribution": "normal", "mean": -1.0, "sd": 1.0,
                                                                "high": 0.0}),
     "/projections/1/weight", "'bounds' is a required property"),
    ("missing-rule", _mutate("/projections/0/rule", None, delete=True), "/projections/0", "'rule' is a required"),
    ("rule-missing-indegree", _mutate("/projections/0/rule", {"type": "fixed_indegree"}), "/projections/0/rule",
     "'indegree' is a required property"),
    ("unknown-rule", _mutate("/projections/0/rule/type", "small_world"), "/projections/0/rule/type", "small_world"),
    ("negative-delay", _mutate("/projections/0/delay", -1.0), "/projections/0/delay", "less than the minimum of 0"),
    ("negative-conductance-weight",
     _mutate("/cell_types/inh_cell/model", "iaf_cond_exp") | {}, None, None),
    ("missing-hdf5", _mutate("/projections/0/rule", {"type": "explicit", "file": "edges_missing.h5"}),
     "/projections/0/rule/file", "file not found: edges_missing.h5"),
    ("missing-spike-file", _mutate("/inputs/0", {"type": "spike_train", "target": "A", "file": "nope.h5",
                                                 "weight": 1.0, "delay": 1.0}),
     "/inputs/0/file", "file not found: nope.h5"),
    ("one-to-one-sizes", _mutate("/projections/0/rule", {"type": "one_to_one"}), "/projections/0/rule/type",
     "one_to_one needs equal sizes"),
    ("duplicate-projection-name", _mutate("/projections/1/name", "A_to_B"), "/projections/1/name",
     "duplicate projection name"),
    ("bad-version", _mutate("/netbabel", "7"), "/netbabel", "'1' was expected"),
    ("bad-name", _mutate("/name", "my model!"), "/name", "does not match"),
    ("dt-zero", _mutate("/simulation/dt", 0), "/simulation/dt", "less than or equal to the minimum of 0"),
    ("record-unknown-pop", _mutate("/simulation/record/v/0/population", "Q"), "/simulation/record/v/0/population",
     "undefined population 'Q'"),
    ("record-index-range", _mutate("/simulation/record/v/0/ids", [0, 99]), "/simulation/record/v/0/ids",
     "out of range"),
    ("seed-type", _mutate("/simulation/seed", "abc"), "/simulation/seed", "is not of type 'integer'"),
    ("stop-before-start", _mutate("/inputs/1/stop", 10.0), "/inputs/1/stop", "before start"),
]
# Cases whose document needs two edits.
_multapse = copy.deepcopy(TINY)
_multapse["projections"][0]["multapses"] = False
_multapse["projections"][0]["rule"]["indegree"] = 50
CASES[[c[0] for c in CASES].index("multapse-impossible")] = (
    "multapse-impossible", _multapse, "/projections/0/rule/indegree", "cannot be satisfied without multapses")
_cond = copy.deepcopy(TINY)
_cond["cell_types"]["exc_cell"] = {"model": "iaf_cond_exp"}
_cond["projections"][1]["weight"] = -3.0
CASES[[c[0] for c in CASES].index("negative-conductance-weight")] = (
    "negative-conductance-weight", _cond, "/projections/1/weight", "conductance-based")


def _run(tmp_path: Path, doc_text: str | bytes, capsys, suffix: str = ".json", command: str = "validate") -> tuple[int, str]:
    src = tmp_path / f"model{suffix}"
    if isinstance(doc_text, bytes):
        src.write_bytes(doc_text)
    else:
        src.write_text(doc_text)
    argv = [command, str(src)] + (["-o", str(tmp_path / "out.yaml")] if command == "convert" else [])
    status = main(argv)
    return status, capsys.readouterr().err


@pytest.mark.parametrize("name,doc,pointer,fragment", CASES, ids=[c[0] for c in CASES])
def test_invalid_document(tmp_path, capsys, name, doc, pointer, fragment):
    status, err = _run(tmp_path, json.dumps(doc), capsys)
    assert status == 2
    assert f"model.json: {pointer}: " in err, err
    assert fragment in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("text,fragment", [
    ("", "file is empty"),
    ("   \n", "file is empty"),
    ('{"netbabel": "1", "name": "x",', "line 1 column 31: invalid JSON"),
    ('{"netbabel": "1", "name": "x", "name": "y"}', "duplicate key 'name'"),
    ('{"netbabel": "1", "name": "x", "parameters": {"a": NaN}}', "NaN is not a valid number"),
    ("[1, 2, 3]", "the document must be an object"),
    (b"\x89HDF\r\n\x1a\n\x00\x00\xff\xfe garbage", "not a text file"),
])
def test_unreadable_json(tmp_path, capsys, text, fragment):
    status, err = _run(tmp_path, text, capsys)
    assert status == 2
    assert fragment in err, err


@pytest.mark.parametrize("text,fragment", [
    ("netbabel: '1'\nname: [unclosed\n", "line 3 column 1: invalid YAML"),
    ("netbabel: '1'\nname: x\nparameters:\n  a: .nan\n", "not a valid number"),
    ("- just\n- a list\n", "the document must be an object"),
])
def test_unreadable_yaml(tmp_path, capsys, text, fragment):
    status, err = _run(tmp_path, text, capsys, suffix=".yaml")
    assert status == 2
    assert fragment in err, err


def test_all_schema_errors_reported_sorted(tmp_path, capsys):
    doc = _mutate("/populations/B/size", -1)
    doc["projections"][0]["rule"]["indegree"] = -2
    doc["simulation"]["seed"] = "fast"
    status, err = _run(tmp_path, json.dumps(doc), capsys)
    assert status == 2
    pointers = [line.split(": ")[2] for line in err.strip().splitlines()]
    assert pointers == sorted(pointers)
    assert {"/populations/B/size", "/projections/0/rule/indegree", "/simulation/seed"} <= set(pointers)


def test_huge_document_refused_in_bounded_memory(tmp_path, capsys):
    src = tmp_path / "huge.json"
    with src.open("w") as f:
        f.write('{"netbabel": "1", "name": "huge", "parameters": {')
        chunk = ", ".join(f'"p{i}": {i}' for i in range(10000))
        for j in range(1000):
            f.write(chunk.replace('"p', f'"q{j}_') + ", ")
        f.write('"last": 1}}')
    assert src.stat().st_size > 100e6
    status = main(["validate", str(src)])
    assert status == 2
    assert "limited to 50 MB" in capsys.readouterr().err


def test_failed_conversion_writes_nothing_and_keeps_input(tmp_path, capsys):
    doc = json.dumps(_mutate("/populations/A/cell_type", "nothing"))
    src = tmp_path / "model.json"
    src.write_text(doc)
    status = main(["convert", str(src), "-o", str(tmp_path / "out.yaml")])
    assert status == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json"]
    assert src.read_text() == doc


def test_attack_did_not_run(tmp_path, capsys):
    marker = Path("/tmp/netbabel_pwned")
    marker.unlink(missing_ok=True)
    doc = _mutate("/parameters/w", "__import__('os').system('touch /tmp/netbabel_pwned')")
    _run(tmp_path, json.dumps(doc), capsys)
    assert not marker.exists()


def test_override_validated_like_the_file(tmp_path, capsys):
    src = DATA / "tiny.json"
    assert main(["validate", str(src), "--set", "populations.A.size=-3"]) == 2
    assert "tiny.json: /populations/A/size: -3 is less than the minimum of 1" in capsys.readouterr().err


def test_real_process_exit_status_and_no_traceback(tmp_path):
    src = tmp_path / "bad.json"
    src.write_text(json.dumps(_mutate("/projections/0/rule/indegree", -5)))
    proc = subprocess.run([sys.executable, "-m", "netbabel.cli", "validate", str(src)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {src}: /projections/0/rule/indegree: -5 is less than the minimum of 0"
    debug = subprocess.run([sys.executable, "-m", "netbabel.cli", "--debug", "validate", str(src)],
                           capture_output=True, text=True)
    assert "Traceback" in debug.stderr
