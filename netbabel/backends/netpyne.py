"""`netbabel simulate --backend netpyne`: export the NetPyNE folder, run run.py in a subprocess.

The mechanisms are compiled once per content hash into netbabel's cache
(netbabel.nmodl.compile_mechanisms) and handed to run.py, so repeated runs do not
recompile. With `--processes N > 1` run.py runs under `mpirun -np N`.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from netbabel.backends.common import run_script, work_directory
from netbabel.description.model import Description
from netbabel.errors import NetbabelError
from netbabel.exporters import netpyne as exporter


def export_and_compile(description: Description, model_dir: Path, options: argparse.Namespace) -> Path:
    """Write the NetPyNE folder into `model_dir` and return the compiled mechanisms' folder."""
    from netbabel.nmodl import compile_mechanisms

    if model_dir.exists():
        shutil.rmtree(model_dir)
    model_dir.mkdir(parents=True)
    exporter.write(description, model_dir, options)
    return compile_mechanisms([model_dir / "mod"])


def run(description: Description, output: Path, options: argparse.Namespace) -> None:
    """Simulate with NetPyNE/NEURON and write the SONATA spike report at `output`."""
    processes = int(getattr(options, "processes", 1) or 1)
    with work_directory(options, prefix="netbabel-netpyne-") as workdir:
        model_dir = workdir / "model_netpyne"
        mechanisms = export_and_compile(description, model_dir, options)
        spikes = workdir / "spikes.h5"
        voltages = workdir / "voltages.h5"
        args = ["--output", spikes, "--mechanisms", mechanisms, "--voltages", voltages]
        # the run happens in workdir, never in a folder with a `schema` package (NetPyNE imports `schema`)
        run_script(model_dir / exporter.SCRIPT, workdir, args=args, processes=processes,
                   description_for_progress="NetPyNE", log_name="netpyne.log")
        deliver(spikes, voltages, Path(output))


def deliver(spikes: Path, voltages: Path, output: Path) -> None:
    """Copy the run's report to `output` (voltages to `<stem>_v.h5`), checking that it reads."""
    from netbabel.spikereport import read_report, write_report

    if not spikes.exists():
        raise NetbabelError("the NetPyNE run wrote no spike report", str(spikes))
    write_report(output, read_report(spikes))
    if voltages.exists():
        shutil.copyfile(voltages, output.with_name(output.stem + "_v.h5"))
