"""`netbabel simulate --backend pynn-nest|pynn-neuron`: export model_pynn.py and run it in a subprocess.

The simulator is chosen by `options.backend`. NEST and NEURON each run in their own process.
With `--processes N > 1`, pynn-neuron runs under `mpirun -np N` (NEURON's wheel has MPI);
pynn-nest needs the MPI build of NEST (`make nest-mpi`), as the nest backend does.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from netbabel.backends.common import run_script, work_directory
from netbabel.backends.nest import NO_MPI_HINT, deliver, nest_mpi_environment
from netbabel.description.model import Description
from netbabel.errors import NetbabelError, UnsupportedFeature
from netbabel.exporters import pynn as exporter

SIMULATOR = {"pynn-nest": "nest", "pynn-neuron": "neuron"}
PREPARE_NEURON = "import pyNN.neuron"  # compiles PyNN's NMODL files on first use (about 16 s)


def ensure_pynn_neuron_mechanisms() -> None:
    """Compile PyNN's NEURON mechanisms once, under a lock (parallel runs and MPI ranks would race)."""
    import fcntl
    import subprocess
    import sys

    lock_path = Path.home() / ".cache" / "netbabel" / "pynn-neuron-nmodl.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run([sys.executable, "-c", PREPARE_NEURON], capture_output=True, text=True, env=env,
                              timeout=900)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise NetbabelError(f"PyNN's NEURON backend does not load (its NMODL files must compile):\n{tail}")


def warn_coarse_synapses(description: Description) -> None:
    """Say so when PyNN's NEURON cells will not match NEST's exact integration closely.

    Measured here (PyNN 0.13, NEURON 9): IF_curr_exp with tau_syn = 0.5 ms at dt = 0.1 ms gives a
    PSP 10 % larger (peak and area) than NEST's exactly integrated iaf_psc_exp (1 % at dt = 0.01 ms):
    NEURON advances the synaptic current (ExpISyn, cnexp) and the membrane with its fixed-step
    implicit scheme. In fluctuation-driven networks near threshold this multiplies firing rates:
    200 iaf_psc_exp cells (tau_syn 0.5 ms) driven by the same frozen 8 kHz Poisson trains fired at
    16.0 Hz in NEST and 30.1 Hz in PyNN/NEURON at dt = 0.1 ms; at dt = 0.01 ms, 15.7 Hz and 17.3 Hz.
    (Also: a NEURON cell that starts above threshold does not spike, as NEURON's NetCon needs an
    upward crossing; NEST fires it in the first step.)
    """
    import sys

    from netbabel.converters.nest import cell_model, is_source

    dt = description.value(description.simulation.dt)
    for pop in description.populations:
        if is_source(description, pop):
            continue
        params = description.cell_types[description.populations[pop].cell_type].params
        taus = [description.value(params[k]) for k in ("tau_syn_ex", "tau_syn_in") if k in params]
        if taus and min(taus) < 10 * dt:
            print(f"warning: population {pop!r} ({cell_model(description, pop)}): tau_syn {min(taus)} ms is under "
                  f"10 dt; PyNN's NEURON cells integrate synapses with NEURON's fixed step and give larger PSPs "
                  f"than NEST's exact integration (+10 % at tau_syn 0.5 ms, dt 0.1 ms; a fluctuation-driven test "
                  f"fired 30 Hz against NEST's 16 Hz). --dt {dt / 10:g} brings PSPs within about 1 %.", file=sys.stderr)
            return


def run(description: Description, output: Path, options: argparse.Namespace) -> None:
    """Simulate with PyNN on NEST or NEURON and write the SONATA spike report at `output`."""
    simulator = SIMULATOR.get(getattr(options, "backend", "pynn-nest") or "pynn-nest", "nest")
    reasons = exporter.unsupported_on(description, simulator)
    if reasons:
        raise UnsupportedFeature(reasons[0] if len(reasons) == 1 else "; ".join(reasons))
    processes = int(getattr(options, "processes", 1) or 1)
    if simulator == "neuron":
        warn_coarse_synapses(description)
        ensure_pynn_neuron_mechanisms()
    env = nest_mpi_environment() if processes > 1 and simulator == "nest" else None
    with work_directory(options, prefix=f"netbabel-pynn-{simulator}-") as workdir:
        model_dir = workdir / f"model_pynn_{simulator}"  # names per backend: `check` may share one workdir
        if model_dir.exists():
            shutil.rmtree(model_dir)
        model_dir.mkdir()
        exporter.write(description, model_dir, options)
        spikes, voltages = workdir / f"spikes_pynn-{simulator}.h5", workdir / f"voltages_pynn-{simulator}.h5"
        args = ["--simulator", simulator, "--output", spikes, "--voltages", voltages]
        run_script(model_dir / exporter.SCRIPT, workdir, args=args, processes=processes, env=env,
                   description_for_progress=f"PyNN ({simulator})", log_name=f"pynn-{simulator}.log",
                   hints={127: NO_MPI_HINT} if simulator == "nest" else None)
        deliver(spikes, voltages, Path(output))
