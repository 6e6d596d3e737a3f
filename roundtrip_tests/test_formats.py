"""Format round trips: description equality (YAML) and NEST spikes after SONATA / NeuroML round trips."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from netbabel.description import Description, io

import features
import harness
from conftest import SIZES

ROOT = Path(__file__).resolve().parents[1]
MODELS = sorted(ROOT.glob("reference_models/*/*.json")) + [ROOT / "tests" / "data" / "tiny.json"]


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_reference_models_survive_json_yaml_json(path, tmp_path):
    if path.name == "package.json" or '"netbabel"' not in path.read_text()[:2000]:
        pytest.skip("not a netbabel description")
    shutil.copytree(path.parent, tmp_path / "model", ignore=shutil.ignore_patterns("x86_64", "*.h5", "__pycache__"))
    for h5 in path.parent.glob("*.h5"):  # data files beside the description, small ones only
        if h5.stat().st_size < 5_000_000:
            shutil.copy(h5, tmp_path / "model")
    path = tmp_path / "model" / path.name
    original = io.load(path)
    yaml_path = path.with_suffix(".yaml")
    io.save(original, yaml_path)
    back = io.load(yaml_path)
    json_path = path.with_name(path.stem + ".again.json")
    io.save(back, json_path)
    assert io.load(json_path).to_dict() == original.to_dict()


def _feature_parts(d: Description, owner: dict, group: str, feature: str) -> dict:
    pops = {p for p, o in owner.items() if o in ((group, feature), (group, "*")) and p in d.populations}
    return {
        "populations": {p: d.populations[p] for p in sorted(pops)},
        "cell_types": {d.populations[p].cell_type: d.cell_types[d.populations[p].cell_type] for p in pops},
        "projections": [x for x in d.projections if x.target in pops],
        "inputs": [x for x in d.inputs if x.target in pops],
    }


def test_feature_model_yaml_round_trip(feature_model, matrix, tmp_path):
    description, owner = feature_model
    path = description.base_dir / f"features-{tmp_path.name}.yaml"
    io.save(description, path)
    back = io.load(path)
    for group, feature in features.feature_rows():
        same = _feature_parts(description, owner, group, feature) == _feature_parts(back, owner, group, feature)
        matrix.record(group, feature, "format: yaml", "round-trips" if same else "changes")
    matrix.verify()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["sonata", "neuroml"])
def test_format_round_trip_then_nest(fmt, cache, mode, matrix, tmp_path):
    """Write the feature model as FMT, read it back, simulate with NEST: the spikes must match NEST direct."""
    if importlib.util.find_spec(f"netbabel.exporters.{fmt}") is None or \
            importlib.util.find_spec(f"netbabel.importers.{fmt}") is None:
        pytest.skip(f"the {fmt} exporter or importer is not available in this version")
    description, owner = cache.model("small")
    nest_reference = cache.reference("small")
    counter = iter(range(100))

    def produce(model: Description, out: Path):
        back = harness.format_round_trip(fmt, model, tmp_path / f"rt{next(counter)}")
        return harness.simulate("nest", back, out, mode)

    candidate, refused, model = harness.simulate_with_refusals("nest", description, owner, tmp_path / "run.h5",
                                                               mode, produce=produce)
    cells = harness.feature_cells(owner, nest_reference, candidate, model, refused)
    for (group, feature), (cell, detail) in cells.items():
        context = f"{mode} mode, {SIZES['small'][0]} cells per population, {SIZES['small'][1]:g} ms"
        matrix.record(group, feature, f"{fmt} -> nest", cell, f"{context}; {detail}" if detail else context)
    matrix.verify()
