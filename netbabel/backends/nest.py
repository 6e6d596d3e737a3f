"""`netbabel simulate --backend nest`: export model_nest.py, run it in a subprocess, keep its report.

With `--processes N > 1` the script runs under `mpirun -np N`. The nest-simulator wheel on
PyPI has no MPI, so MPI runs use the build made by `make nest-mpi` (found in
`$NETBABEL_NEST_MPI` or `~/.cache/netbabel/nest-<version>-mpi`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sysconfig
from pathlib import Path

from netbabel.backends.common import run_script, work_directory
from netbabel.description.model import Description
from netbabel.errors import NetbabelError
from netbabel.exporters import nest as exporter

NEST_VERSION = "3.10"
NO_MPI_HINT = ("the NEST in this Python has no MPI (the PyPI wheel is built without it): "
               "run `make nest-mpi` and retry")


def nest_mpi_prefix() -> Path:
    """Where `make nest-mpi` installs NEST with MPI."""
    env = os.environ.get("NETBABEL_NEST_MPI")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "netbabel" / f"nest-{NEST_VERSION}-mpi"


def nest_mpi_environment() -> dict[str, str]:
    """PYTHONPATH and library paths of the MPI build of NEST; NetbabelError when it is absent."""
    prefix = nest_mpi_prefix()
    site = _site_packages(prefix)
    if site is None:
        raise NetbabelError(f"--processes > 1 needs NEST built with MPI, not found in {prefix}: "
                            "run `make nest-mpi` (about 5 minutes) or set NETBABEL_NEST_MPI")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")])),
           "NEST_INSTALL_DIR": str(prefix)}
    lib = prefix / "lib"
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(lib), str(prefix / "lib" / "nest"),
                                                            os.environ.get("LD_LIBRARY_PATH", "")]))
    return env


def _site_packages(prefix: Path) -> Path | None:
    version = sysconfig.get_python_version()
    for lib in ("lib", "lib64"):
        for site in (prefix / lib / f"python{version}" / "site-packages", prefix / lib / f"python{version}" / "dist-packages"):
            if (site / "nest" / "__init__.py").exists():
                return site
    return None


def run(description: Description, output: Path, options: argparse.Namespace) -> None:
    """Simulate with NEST and write the SONATA spike report at `output`."""
    processes = int(getattr(options, "processes", 1) or 1)
    env = nest_mpi_environment() if processes > 1 else None
    with work_directory(options, prefix="netbabel-nest-") as workdir:
        model_dir = workdir / "model_nest"
        if model_dir.exists():
            shutil.rmtree(model_dir)
        model_dir.mkdir()
        exporter.write(description, model_dir, options)
        spikes = workdir / "spikes_nest.h5"  # names per backend: `check` may share one workdir
        voltages = workdir / "voltages_nest.h5"
        args = ["--output", spikes, "--voltages", voltages]
        run_script(model_dir / exporter.SCRIPT, workdir, args=args, processes=processes, env=env,
                   description_for_progress="NEST", log_name="nest.log", hints={127: NO_MPI_HINT})
        deliver(spikes, voltages, Path(output))


def deliver(spikes: Path, voltages: Path, output: Path) -> None:
    """Copy the run's reports to `output` (and `<output stem>_v.h5`), checking the spike report reads."""
    from netbabel.spikereport import read_report, write_report

    if not spikes.exists():
        raise NetbabelError("the simulation finished without writing its spike report", str(spikes))
    write_report(output, read_report(spikes))
    if voltages.exists():
        shutil.copyfile(voltages, voltage_report_path(output))


def voltage_report_path(output: Path) -> Path:
    """Where the membrane report goes beside a spike report: spikes.h5 -> spikes_v.h5."""
    return output.with_name(output.stem + "_v" + output.suffix)
