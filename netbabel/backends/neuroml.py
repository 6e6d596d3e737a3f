"""Backends `neuroml` (jNeuroML), `neuroml-neuron` (jNeuroML's NEURON export) and `neuroml-pylems` (PyLEMS).

All three export the description with `netbabel.exporters.neuroml` into a work
directory and run the LEMS file in a subprocess:

- `neuroml`: `java -jar jNeuroML.jar LEMS_<name>.xml -nogui` (jLEMS, forward Euler at the model's dt).
  Its spike files hold seconds; the report holds ms.
- `neuroml-neuron`: `jNeuroML -neuron` writes a NEURON model (Python + NMODL); netbabel patches the
  generated NMODL of Poisson inputs (see `patch_mod_files`), compiles it with nrnivmodl and runs it.
  Population ids are prefixed (`pop_E`), as names such as `E` or `PI` are hoc built-in constants.
- `neuroml-pylems`: PyLEMS, pure Python, no Java; slow (about 10^4 cell-steps per second), for single
  cells and tiny networks. PyLEMS writes no event files, so the cells' `v` is recorded at every step
  and a spike is a step where `v` jumps down by more than 10 mV (the reset of an integrate-and-fire
  or Izhikevich cell) or crosses 0 mV upwards (a Hodgkin-Huxley cell): spike times are on the dt grid.
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
from netbabel.errors import NetbabelError
from netbabel.spikereport import write_report

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
    with work_directory(options, prefix=f"netbabel-{engine}-") as workdir:
        model_dir = workdir / "model"
        if model_dir.exists():
            shutil.rmtree(model_dir)
        result = export(description, model_dir, options, safe_ids=engine == "neuroml-neuron",
                        pylems_v=engine == "neuroml-pylems")
        if engine == "neuroml":
            run_jneuroml(result.lems_file, workdir)
            spikes = read_spike_files(result, seconds=True)
        elif engine == "neuroml-neuron":
            run_neuron(result.lems_file, workdir)
            spikes = read_spike_files(result, seconds=True)
        else:
            run_pylems(result.lems_file, workdir)
            spikes = read_pylems_spikes(result, float(description.value(description.simulation.dt)))
        write_report(output, spikes, attrs={"simulator": engine})


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
    """PyLEMS in a subprocess; seconds taken."""
    core = core_types_dir(workdir)
    runner = "import sys; from lems.run import main; sys.argv[0] = 'pylems'; main()"
    return _run([sys.executable, "-c", runner, lems_file.name, "-nogui", "-I", str(core.resolve())],
                lems_file.parent, workdir / "pylems.log")


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


def read_pylems_spikes(result, dt: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Spikes detected in PyLEMS's per-step `v` files (columns: t, v of each cell, in SI units)."""
    spikes = {}
    for pname, relative in result.spike_files.items():
        path = result.directory / relative.replace(".spikes", ".v.dat")
        data = np.loadtxt(path, ndmin=2)
        t_ms, v_mv = data[:, 0] * 1000.0, data[:, 1:] * 1000.0
        dv = np.diff(v_mv, axis=0)
        reset = dv < -10.0
        up = (v_mv[:-1] < 0.0) & (v_mv[1:] >= 0.0)
        steps, cells = np.nonzero(reset | up)
        # PyLEMS labels each row with the time before the step whose result it holds (row 0 is already
        # one step on from v_init): a reset seen in row k+1 happened in the step ending at t[k+1] + dt,
        # which is where jLEMS puts the spike
        spikes[pname] = (cells.astype(np.int64), np.round(t_ms[steps + 1] + dt, 9))
    return spikes
