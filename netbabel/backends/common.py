"""Running exported simulation scripts: subprocess, progress bar, log capture, MPI.

Every backend exports a model into a work directory and runs the exported
script in its own process (NEST and NEURON never share one Python process).
This module is the generic part, shared by all backends:

- `work_directory(options, prefix)`: the directory to export and run in
  (`--workdir` if the user gave one, kept; otherwise a temporary one, removed).
- `run_script(script, workdir, ...)`: runs `python script ARGS` (or
  `mpirun -np N python script ARGS`), writes everything it prints to
  `workdir/<log_name>`, shows a progress bar on a terminal, and turns a failure
  into a `NetbabelError` that quotes the end of the log.

Progress protocol: a script may print lines `progress: DONE/TOTAL` (e.g.
`progress: 250.0/1000.0 ms`); `run_script` moves a bar accordingly. Lines
that do not match are only logged. Scripts should print it from MPI rank 0 only.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from netbabel.errors import NetbabelError
from netbabel.progress import progress

PROGRESS_RE = re.compile(r"progress:\s*([0-9.eE+-]+)\s*/\s*([0-9.eE+-]+)")
LOG_TAIL_LINES = 25


@dataclass
class RunResult:
    """What a finished script left behind."""

    returncode: int
    log: Path
    seconds: float

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return log_tail(self.log, lines)


@contextlib.contextmanager
def work_directory(options: object = None, prefix: str = "netbabel-") -> Iterator[Path]:
    """`options.workdir` when set (created, kept afterwards), else a temporary directory (removed)."""
    kept = getattr(options, "workdir", None) if options is not None else None
    if kept:
        path = Path(kept).resolve()
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def mpirun_command(processes: int) -> list[str]:
    """`mpirun -np N` (with `--oversubscribe` for Open MPI); a NetbabelError when there is no mpirun."""
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if mpirun is None:
        raise NetbabelError(f"--processes {processes} needs MPI, but no mpirun/mpiexec is on PATH "
                            "(Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev)")
    command = [mpirun, "-np", str(processes)]
    if _is_open_mpi(mpirun):
        command.append("--oversubscribe")
    return command


def _is_open_mpi(mpirun: str) -> bool:
    try:
        out = subprocess.run([mpirun, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "Open MPI" in out or "OpenRTE" in out


def mpi_environment() -> dict[str, str]:
    """Environment that lets Open MPI run in containers (as root, without a resource manager)."""
    return {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
            "OMPI_MCA_rmaps_base_oversubscribe": "1", "PRTE_MCA_rmaps_default_mapping_policy": ":oversubscribe"}


def run_script(script: Path, workdir: Path, args: Sequence[str] = (), processes: int = 1,
               env: Mapping[str, str] | None = None, description_for_progress: str = "simulating",
               log_name: str = "run.log", python: str | None = None, timeout: float | None = None,
               hints: Mapping[int, str] | None = None) -> RunResult:
    """Run `python script *args` in `workdir` (under `mpirun -np processes` when processes > 1).

    - stdout and stderr go, merged, to `workdir/log_name`;
    - `progress: DONE/TOTAL` lines move a progress bar labelled `description_for_progress`
      (shown on a terminal only);
    - `env` entries are added to the current environment (PYTHONUNBUFFERED is set, and the
      interpreter's bin directory leads PATH, so a virtualenv's tools such as nrnivmodl are found);
    - a non-zero exit raises NetbabelError with the exit status, the log's last lines and,
      when `hints` has an entry for that status, the explanation;
    - `timeout` (seconds) kills the run and raises NetbabelError.
    Returns a RunResult (exit status, log path, wall-clock seconds).
    """
    script = Path(script)
    workdir = Path(workdir)
    log_path = workdir / log_name
    command = [python or sys.executable, str(script), *map(str, args)]
    full_env = dict(os.environ)
    full_env["PYTHONUNBUFFERED"] = "1"
    # the interpreter's bin directory first: tools installed with it (nrnivmodl, ...) are found
    bin_dir = str(Path(python or sys.executable).parent)
    full_env["PATH"] = os.pathsep.join([bin_dir, full_env.get("PATH", "")])
    if processes > 1:
        command = mpirun_command(processes) + command
        full_env.update(mpi_environment())
    full_env.update(env or {})
    start = time.perf_counter()
    returncode = _stream(command, workdir, full_env, log_path, description_for_progress, timeout)
    seconds = time.perf_counter() - start
    result = RunResult(returncode, log_path, seconds)
    if returncode != 0:
        hint = (hints or {}).get(returncode)
        label = "killed after the timeout" if returncode == -9 and timeout else f"exited with status {returncode}"
        message = f"{script.name} {label}"
        if hint:
            message += f": {hint}"
        message += f"\n--- last lines of {log_path} ---\n{result.tail()}"
        raise NetbabelError(message, str(script))
    return result


def _stream(command: list[str], workdir: Path, env: dict[str, str], log_path: Path,
            label: str, timeout: float | None) -> int:
    """Run `command`, copying its output to `log_path` and driving a progress bar; the exit status."""
    with open(log_path, "w") as log, progress(total=1.0, desc=label, unit="") as bar:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        try:
            proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, bufsize=1, errors="replace",
                                    start_new_session=True)
        except OSError as exc:
            raise NetbabelError(f"cannot start {command[0]}: {exc}") from None
        timer = threading.Timer(timeout, _kill, (proc,)) if timeout else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                match = PROGRESS_RE.search(line)
                if match:
                    done, total = float(match.group(1)), float(match.group(2))
                    if total > 0:
                        bar.total = total
                        bar.n = min(done, total)
                        bar.refresh()
            return proc.wait()
        except BaseException:
            _kill(proc)
            raise
        finally:
            if timer:
                timer.cancel()


def _kill(proc: subprocess.Popen) -> None:
    """Stop the process group the run started (mpirun and its ranks included)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, 9)
    with contextlib.suppress(Exception):
        proc.wait(timeout=10)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a log file (empty when it does not exist)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
