"""Backends `neuroml` (jNeuroML), `neuroml-neuron` (jNeuroML's NEURON export) and `neuroml-pylems` (PyLEMS).

All three export the description with `netbabel.exporters.neuroml` into a work
directory and run the LEMS file in a subprocess:

- `neuroml`: `java -jar jNeuroML.jar LEMS_<name>.xml -nogui` (jLEMS, forward Euler at the model's dt).
  Its spike files hold seconds; the report holds ms.
- `neuroml-neuron`: `jNeuroML -neuron` writes a NEURON model (Python + NMODL); netbabel patches the
  generated NMODL of Poisson inputs (see `patch_mod_files`), compiles it with nrnivmodl and runs it.
  Population ids are prefixed (`pop_E`), as names such as `E` or `PI` are hoc built-in constants.
- `neuroml-pylems`: PyLEMS, pure Python, no Java; slow (about 10^3 - 10^4 cell-steps per second), for
  single cells and tiny networks, run through `netbabel.backends.pylems_runner` (PyLEMS with netbabel's
  fixes, recording the spikes itself).

Cell types an engine cannot run are refused with the reason (`_refuse_engine_limits`; docs/neuroml.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from netbabel.backends.common import log_tail, work_directory
from netbabel.description.model import Description
from netbabel.errors import NetbabelError, UnsupportedFeature
from netbabel.spikereport import write_report, write_voltage_population

ENGINES = ("neuroml", "neuroml-neuron", "neuroml-pylems")


def jneuroml_jar() -> Path:
    """The jNeuroML jar shipped inside pyNeuroML (found without importing pyneuroml)."""
    spec = importlib.util.find_spec("pyneuroml")
    if spec is None or not spec.submodule_search_locations:
        raise NetbabelError("the neuroml backends need pyNeuroML: pip install pyNeuroML")
    jars = sorted(Path(list(spec.submodule_search_locations)[0], "lib").glob("jNeuroML-*-jar-with-dependencies.jar"))
    if not jars:
        raise NetbabelError("pyNeuroML has no jNeuroML jar in its lib folder")
    return jars[-1]


def java() -> str:
    found = shutil.which("java")
    if found is None:
        raise NetbabelError("the neuroml backends need Java (jNeuroML): install a JRE (e.g. openjdk-17-jre)")
    return found


def run(description: Description, output: Path, options: argparse.Namespace) -> None:
    """Export, simulate with the engine named by options.backend, write the SONATA spike report."""
    from netbabel.exporters.neuroml import export

    engine = getattr(options, "backend", "neuroml") or "neuroml"
    if engine not in ENGINES:
        raise NetbabelError(f"unknown NeuroML engine {engine!r}")
    if int(getattr(description.simulation, "processes", 1) or 1) > 1:
        raise NetbabelError(f"the {engine} backend runs in one process (no MPI)")
    if engine in ("neuroml", "neuroml-pylems"):
        for name, cell in description.cell_types.items():
            if cell.model == "multicompartment" and len(cell.sections or []) > 1:
                raise NetbabelError(f"cell type {name!r} has {len(cell.sections or [])} sections: jLEMS and PyLEMS "
                                    "simulate only single-compartment cells; use --backend neuroml-neuron")
    _refuse_engine_limits(description, engine)
    with work_directory(options, prefix=f"netbabel-{engine}-") as workdir:
        model_dir = workdir / "model"
        if model_dir.exists():
            shutil.rmtree(model_dir)
        result = export(description, model_dir, options, safe_ids=engine == "neuroml-neuron")
        if engine == "neuroml":
            run_jneuroml(result.lems_file, workdir)
            spikes = read_spike_files(result, seconds=True)
        elif engine == "neuroml-neuron":
            run_neuron(result.lems_file, workdir)
            spikes = read_spike_files(result, seconds=True)
        else:
            run_pylems(result.lems_file, workdir)
            spikes = read_spike_files(result, seconds=True)
        write_report(output, spikes, attrs={"simulator": engine})
        write_voltage_report(description, result, Path(output), first_row=0 if engine == "neuroml-pylems" else 1)


def _refuse_engine_limits(description: Description, engine: str) -> None:
    """Refuse cell types an engine cannot run (docs/neuroml.md, "Known limits of the engines").

    hh_cond_exp_traub -> HH_cond_exp, whose LEMS definition (PyNN.xml) has no spike port: jLEMS and PyLEMS
    can neither record its spikes nor connect from it ("No output port"); jNeuroML's NEURON export of PyNN
    cells requires a `v_thresh`, which HH_cond_exp does not have. aeif_cond_exp in the NEURON export: v
    runs away through the exponential term at the first spike (and disturbed other cells' spike times).
    """
    for name, cell in description.cell_types.items():
        if cell.model != "hh_cond_exp_traub":
            continue
        pops = [p for p, pop in description.populations.items() if pop.cell_type == name]
        spikes = description.simulation.record.spikes
        needed = [p for p in pops if spikes == "all" or p in spikes
                  or any(proj.source == p for proj in description.projections)]
        if engine == "neuroml-neuron" and pops:
            raise UnsupportedFeature("hh_cond_exp_traub -> NeuroML2 HH_cond_exp: jNeuroML's NEURON export of "
                                     "PyNN cells needs v_thresh, which HH_cond_exp lacks", None, f"/cell_types/{name}")
        if needed:
            raise UnsupportedFeature(f"hh_cond_exp_traub -> NeuroML2 HH_cond_exp has no spike output port in its "
                                     f"LEMS definition: the spikes of {', '.join(needed)} can neither be recorded "
                                     f"nor sent in {engine} (record V_m only, or use nest/netpyne/pynn)", None,
                                     f"/cell_types/{name}")
    for name, cell in description.cell_types.items():
        used = any(pop.cell_type == name for pop in description.populations.values())
        if engine == "neuroml-neuron" and cell.model == "aeif_cond_exp" and used:
            raise UnsupportedFeature("aeif_cond_exp -> NeuroML2 EIF_cond_exp_isfa_ista in jNeuroML's NEURON export: "
                                     "NEURON integrates v through the exponential term to ~1e27 mV before the "
                                     "reset at the first spike, and the cell never recovers; use --backend neuroml",
                                     None, f"/cell_types/{name}")


def _run(command: list[str], cwd: Path, log: Path, env: dict | None = None, timeout: float | None = None) -> float:
    """Run a command, logging its output; NetbabelError with the log's end on failure. Wall-clock seconds."""
    start = time.perf_counter()
    with open(log, "a") as handle:
        handle.write("$ " + " ".join(command) + "\n")
        handle.flush()
        try:
            proc = subprocess.run(command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT,
                                  env={**os.environ, **(env or {})}, timeout=timeout)
        except OSError as exc:
            raise NetbabelError(f"cannot start {command[0]}: {exc}") from None
        except subprocess.TimeoutExpired:
            raise NetbabelError(f"{Path(command[0]).name} did not finish within {timeout} s", str(log)) from None
    if proc.returncode != 0:
        raise NetbabelError(f"{' '.join(command[:4])} ... exited with status {proc.returncode}\n"
                            f"--- last lines of {log} ---\n{log_tail(log)}")
    text = log.read_text(errors="replace")
    if "Exception" in text and "Finished" not in text and command[0].endswith("java"):
        raise NetbabelError(f"jNeuroML failed\n--- last lines of {log} ---\n{log_tail(log)}")
    return time.perf_counter() - start


def run_jneuroml(lems_file: Path, workdir: Path) -> float:
    """`jnml LEMS -nogui` in the LEMS file's folder; seconds taken."""
    return _run([java(), "-Xmx1G", "-jar", str(jneuroml_jar()), lems_file.name, "-nogui"], lems_file.parent,
                workdir / "jnml.log")


def neuron_environment() -> dict[str, str]:
    """NEURON_HOME for jNeuroML's NEURON export: the prefix where nrnivmodl lives (the virtual environment)."""
    nrnivmodl = shutil.which("nrnivmodl", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if nrnivmodl is None:
        raise NetbabelError("the neuroml-neuron backend needs NEURON (nrnivmodl): pip install neuron")
    bindir = Path(nrnivmodl).parent
    return {"NEURON_HOME": str(bindir.parent), "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}


def run_neuron(lems_file: Path, workdir: Path) -> float:
    """jNeuroML -> NEURON (Python + NMODL), patched, compiled and run; seconds taken."""
    env = neuron_environment()
    folder = lems_file.parent
    seconds = _run([java(), "-Xmx1G", "-jar", str(jneuroml_jar()), lems_file.name, "-neuron", "-nogui"], folder,
                   workdir / "jnml_neuron.log", env)
    patch_mod_files(folder)
    seconds += _run([str(Path(env["NEURON_HOME"]) / "bin" / "nrnivmodl")], folder, workdir / "nrnivmodl.log", env)
    script = folder / f"{lems_file.stem}_nrn.py"
    seconds += _run([sys.executable, script.name, "-nogui"], folder, workdir / "neuron.log", env)
    return seconds


_PATCHES = [
    # old C prototypes that clash with NEURON 9's C++ declarations (Rand* nrn_random_arg(int), ...)
    (re.compile(r"^\s*double\s+nrn_random_pick\s*\(\s*void\s*\*\s*\w*\s*\)\s*;\s*$", re.M), ""),
    (re.compile(r"^\s*void\s*\*\s*nrn_random_arg\s*\(\s*int\s*\w*\s*\)\s*;\s*$", re.M), ""),
    (re.compile(r"\*pv\s*=\s*nrn_random_arg\(1\);"), "*pv = (void*) nrn_random_arg(1);"),
    (re.compile(r"nrn_random_pick\(_p_donotuse\)"), "nrn_random_pick(static_cast<Rand*>(_p_donotuse))"),
]


def patch_mod_files(folder: Path) -> list[str]:
    """Make jNeuroML's generated NMODL compile with NEURON 9; returns the files changed.

    jNeuroML 0.14 writes Poisson inputs (poissonFiringSynapse, transientPoissonFiringSynapse,
    SpikeSourcePoisson) with VERBATIM blocks copied from NEURON 8's netstim.mod: C prototypes
    `double nrn_random_pick(void*)` and `void* nrn_random_arg(int)`. NEURON 9 compiles NMODL as
    C++ and declares `Rand* nrn_random_arg(int)`, so the old prototypes are "ambiguating new
    declarations". The patch drops them and casts between `void*` and `Rand*` where they are used.
    """
    changed = []
    for mod in sorted(folder.glob("*.mod")):
        text = mod.read_text()
        new = text
        for pattern, replacement in _PATCHES:
            new = pattern.sub(replacement, new)
        if new != text:
            mod.write_text(new)
            changed.append(mod.name)
    return changed


def core_types_dir(workdir: Path) -> Path:
    """NeuroML2CoreTypes extracted from the jNeuroML jar (PyLEMS needs them on its include path)."""
    target = workdir / "NeuroML2CoreTypes"
    if not target.exists():
        with zipfile.ZipFile(jneuroml_jar()) as jar:
            for name in jar.namelist():
                if name.startswith("NeuroML2CoreTypes/") and name.endswith(".xml"):
                    jar.extract(name, workdir)
    return target


def run_pylems(lems_file: Path, workdir: Path) -> float:
    """PyLEMS through `pylems_runner.pylems_main` (patched, recording spikes itself) in a subprocess; seconds taken."""
    core = core_types_dir(workdir)
    runner = "import sys; from netbabel.backends.pylems_runner import pylems_main; pylems_main(sys.argv[1], sys.argv[2])"
    return _run([sys.executable, "-c", runner, lems_file.name, str(core.resolve())],
                lems_file.parent, workdir / "pylems.log")


def write_voltage_report(description: Description, result, output: Path, first_row: int) -> None:
    """The recorded V_m as the NEST backend's membrane report, beside the spike report (`<stem>_v.h5`).

    The LEMS OutputFiles (`<population id>.v.dat`: t and v in SI units) become /report/<population>/data
    (samples at dt, 2 dt, ..., duration; cells in ascending index order; mV), mapping/node_ids, element_ids,
    index_pointers and time. jLEMS and jNeuroML's NEURON export write the state at t = k dt in row k (row 0:
    the initial state), PyLEMS the state after step k + 1 in row k: `first_row` is 1 or 0.
    """
    import h5py

    from netbabel.atomic import atomic_path
    from netbabel.exporters.neuroml import voltage_columns

    columns = voltage_columns(description)
    if not columns:
        return
    dt = float(description.value(description.simulation.dt))
    n_steps = int(round(float(description.value(description.simulation.duration)) / dt))
    with atomic_path(output.with_name(output.stem + "_v" + output.suffix)) as tmp, h5py.File(tmp, "w") as f:
        for pname, ids in columns.items():
            path = result.directory / f"{result.population_ids[pname]}.v.dat"
            if not path.exists():
                raise NetbabelError(f"the simulation wrote no V_m file for population {pname!r}", str(path))
            values = np.loadtxt(path, ndmin=2)[first_row:first_row + n_steps, 1:1 + len(ids)] * 1000.0
            data = np.full((n_steps, len(ids)), np.nan)
            data[:len(values)] = values
            write_voltage_population(f, pname, data, ids, dt)


def read_spike_files(result, seconds: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """jNeuroML / NEURON ID_TIME spike files -> {netbabel population: (ids, times in ms)}."""
    spikes = {}
    for pname, relative in result.spike_files.items():
        path = result.directory / relative
        if not path.exists():
            raise NetbabelError(f"the simulation wrote no spike file for population {pname!r}", str(path))
        data = np.loadtxt(path, ndmin=2) if path.stat().st_size else np.zeros((0, 2))
        ids = data[:, 0].astype(np.int64) if len(data) else np.zeros(0, np.int64)
        times = data[:, 1] * (1000.0 if seconds else 1.0) if len(data) else np.zeros(0)
        spikes[pname] = (ids, np.round(times, 9))
    return spikes
