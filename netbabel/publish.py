"""`netbabel publish MODEL -o DIR`: an Open Source Brain (OSB) ready NeuroML2 bundle.

DIR receives:
- `<name>.net.nml` and `LEMS_<name>.xml` (native mode: Poisson inputs are drawn by the simulator),
  checked by jNeuroML's validator (`jnml -validate`);
- `.test/<name>.jnml.omt` and `.test/<name>.mep`: OMV tests (osb-model-validation) of the mean firing
  rate of every recorded population (OMV's "duration based" rate over the cells that fired, in Hz);
- `README.md`: what the model is, provenance, citation, how to run and test it.

Expected values: computed by running the exported LEMS file in jNeuroML (netbabel's `neuroml`
backend), once per seed for seeds seed, seed+1, seed+2 when the model has random inputs. This module
sits above exporters and backends (it runs the NeuroML exporter, then the neuroml backend); NEST is
not run here: the equivalence of jNeuroML and NEST for the exported cell types is what netbabel's
own tests check (tests/test_neuroml_simulate.py, tests/test_neuroml_publish.py).
Tolerance (OMV's relative tolerance): max(3 x the seed-to-seed standard deviation / mean,
RATE_TOLERANCE_FLOOR); the floor covers engine differences (jNeuroML vs jNeuroML-NEURON: both
integrate on the same dt grid, spike times agree to a few steps).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import tempfile
from pathlib import Path

import numpy as np

from netbabel.description.catalogue import MODELS
from netbabel.description.model import Description
from netbabel.errors import NetbabelError

RATE_TOLERANCE_FLOOR = 0.02
SEEDS_FOR_SPREAD = 3


def has_randomness(d: Description) -> bool:
    """Poisson inputs or Poisson source populations: results depend on the seed."""
    if any(i.type == "poisson" for i in d.inputs):
        return True
    return any(c.model == "poisson_generator" for c in d.cell_types.values())


def publish(description: Description, out_dir: Path, options: argparse.Namespace) -> None:
    from netbabel.backends import neuroml as runner
    from netbabel.exporters.neuroml import export

    native = argparse.Namespace(mode="native", neuroml_hdf5=getattr(options, "neuroml_hdf5", "auto"))
    result = export(description, out_dir, native)
    validate_with_jneuroml(result.network_file)
    duration_s = float(description.value(description.simulation.duration)) / 1000.0
    seeds = [description.simulation.seed + k for k in range(SEEDS_FOR_SPREAD if has_randomness(description) else 1)]
    rates: dict[str, list[float]] = {pop: [] for pop in result.spike_files}
    with tempfile.TemporaryDirectory(prefix="netbabel-publish-") as tmp:
        for seed in seeds:
            d = copy.deepcopy(description)
            d.simulation.seed = seed
            run_dir = Path(tmp) / f"seed{seed}"
            run = export(d, run_dir, native, validate=False)
            runner.run_jneuroml(run.lems_file, Path(tmp))
            for pop, spike_file in run.spike_files.items():
                rates[pop].append(omv_rate(run_dir / spike_file, duration_s))
    expected = {}
    for pop, values in rates.items():
        mean = float(np.mean(values))
        spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        tolerance = max(3.0 * spread / mean, RATE_TOLERANCE_FLOOR) if mean > 0 else RATE_TOLERANCE_FLOOR
        expected[pop] = (mean, tolerance, values)
    for extra in out_dir.glob("*.spikes"):
        extra.unlink()
    write_omv(out_dir, description, result, expected, duration_s)
    write_readme(out_dir, description, result, expected, seeds)


def validate_with_jneuroml(network_file: Path) -> None:
    """`jnml FILE -validate` (one Java call); NetbabelError with its report when invalid."""
    import subprocess

    from netbabel.backends.neuroml import java, jneuroml_jar

    if network_file.name.endswith(".h5"):
        return  # jNeuroML validates XML only; the HDF5 was written by libNeuroML from a valid document
    run = subprocess.run([java(), "-jar", str(jneuroml_jar()), "-validate", network_file.name],
                         cwd=network_file.parent, capture_output=True, text=True, timeout=300)
    text = run.stdout + run.stderr
    if run.returncode != 0 or "Valid against schema and all tests" not in text:
        raise NetbabelError(f"jNeuroML does not validate the export:\n{text[-2000:]}", str(network_file))


def omv_rate(spike_file: Path, duration_s: float) -> float:
    """OMV's 'duration based' mean rate (Hz) over the cells that fired, from a jNeuroML ID_TIME file (s)."""
    if not spike_file.exists() or spike_file.stat().st_size == 0:
        return 0.0
    data = np.loadtxt(spike_file, ndmin=2)
    ids, times = data[:, 0], data[:, 1]
    inside = (times >= 0) & (times <= duration_s)
    cells = np.unique(ids)
    return float(np.mean([np.sum(inside & (ids == c)) / duration_s for c in cells]))


def write_omv(out_dir: Path, d: Description, result, expected: dict, duration_s: float) -> None:
    test_dir = out_dir / ".test"
    test_dir.mkdir(exist_ok=True)
    name = result.lems_file.stem[len("LEMS_"):]
    omt = [f"# OMV test of {name}, written by netbabel publish (see ../README.md).",
           "# Run: omv test .test/" + f"{name}.jnml.omt", "",
           f"target: ../{result.lems_file.name}", "engine: jNeuroML", f"mep: {name}.mep", "experiments:"]
    mep = [f"# Expected values for {name}: mean rates (Hz) from jNeuroML runs (see ../README.md).",
           f"system: {name}", "experiments:"]
    for pop, (mean, tolerance, _) in expected.items():
        exp_name = f"rate_{result.population_ids[pop]}"
        omt += [f"  {exp_name}:", "    observables:", "      spike rate:", "        spiketimes file:",
                f"          path: ../{result.spike_files[pop]}", "          format: ID_TIME", "          ids: '*'",
                "          scaling: 1", "        method: duration based", "        start_time: 0",
                f"        end_time: {duration_s!r}", f"        tolerance: {tolerance:.6g}"]
        mep += [f"  {exp_name}:", "    expected:", f"      spike rate: {mean!r}"]
    (test_dir / f"{name}.jnml.omt").write_text("\n".join(omt) + "\n")
    (test_dir / f"{name}.mep").write_text("\n".join(mep) + "\n")


def write_readme(out_dir: Path, d: Description, result, expected: dict, seeds: list[int]) -> None:
    from netbabel import __version__

    meta = d.metadata
    name = result.lems_file.stem[len("LEMS_"):]
    title = meta.title or d.name
    lines = [f"# {title}", ""]
    if meta.description:
        lines += [meta.description, ""]
    lines += ["NeuroML2 network and LEMS simulation written by "
              f"netbabel {__version__} on "
              f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d')}.", ""]
    lines += ["## Files", "", f"- `{result.network_file.name}`: the network (cells, synapses, populations, "
              "explicit connections with weights and delays, inputs).",
              f"- `{result.lems_file.name}`: the simulation ({d.value(d.simulation.duration)} ms, dt "
              f"{d.value(d.simulation.dt)} ms, seed {d.simulation.seed}); spike times go to "
              "`<population>.spikes` (cell id, time in s).",
              f"- `.test/{name}.jnml.omt`, `.test/{name}.mep`: OMV tests of the mean firing rates.", ""]
    lines += ["## How to run", "", "```", "pip install pyNeuroML OSBModelValidation",
              f"pynml -validate {result.network_file.name}", f"pynml {result.lems_file.name} -nogui          # jNeuroML",
              f"pynml {result.lems_file.name} -neuron -run -nogui   # NEURON (needs NEURON_HOME)",
              f"omv test .test/{name}.jnml.omt", "```", ""]
    lines += ["## Expected activity", "",
              f"Mean rate over the cells that fired (OMV's duration-based rate), from jNeuroML runs with seeds "
              f"{', '.join(map(str, seeds))}; the OMV tolerance is relative: max(3 x seed-to-seed sd / mean, "
              f"{RATE_TOLERANCE_FLOOR}).", "", "| population | rate (Hz) | per seed | tolerance |", "|---|---|---|---|"]
    for pop, (mean, tolerance, values) in expected.items():
        lines.append(f"| {pop} | {mean:.4g} | {', '.join(f'{v:.4g}' for v in values)} | {tolerance:.3g} |")
    lines += [""]
    if meta.authors or meta.references:
        lines += ["## Citation", ""]
        if meta.authors:
            lines += [f"Model by {', '.join(meta.authors)}.", ""]
        lines += [f"- {ref}" for ref in meta.references] + [""]
        lines += ["Please cite the original publication(s) above when you use this model.", ""]
    if meta.license:
        lines += ["## License", "", meta.license, ""]
    lines += ["## Provenance", "", f"- netbabel {__version__}: description `{d.name}` -> NeuroML2 "
              "(`netbabel publish`)."]
    for p in meta.provenance:
        parts = [p.tool]
        if p.format:
            parts.append(f"from {p.format}")
        if p.source:
            parts.append(f"`{p.source}`")
        if p.sha256:
            parts.append(f"(sha256 {p.sha256[:16]}...)")
        if p.date:
            parts.append(f"on {p.date}")
        lines.append("- " + " ".join(parts))
    notes = _neuroml_notes(d)
    if notes:
        lines += ["", "## Notes on the conversion", ""] + [f"- {n}" for n in notes]
    (out_dir / "README.md").write_text("\n".join(lines) + "\n")


def _neuroml_notes(d: Description) -> list[str]:
    notes = ["Connection rules were drawn by netbabel (deterministic from the seed) and written as explicit "
             "connections: NeuroML2 has no connection rules."]
    if any(i.type == "poisson" for i in d.inputs):
        notes.append("Poisson inputs are NeuroML2 poissonFiringSynapses: each simulator draws its own trains, so "
                     "spike times differ between simulators and only rates are compared; NeuroML2 Poisson inputs "
                     "have no delay (a constant shift of a Poisson train).")
    models = {c.model for c in d.cell_types.values() if c.model in MODELS}
    if models & {"iaf_psc_exp", "iaf_psc_alpha", "iaf_cond_exp", "iaf_cond_alpha", "aeif_cond_exp",
                 "hh_cond_exp_traub"}:
        notes.append("Point neurons are NeuroML2's PyNN cell types (parameters in PyNN units: nF, nA, uS, mV, ms).")
    return notes

