"""netbabel's NMODL mechanisms (NEST-exact point neurons, VecStim) and a cached nrnivmodl build.

`compile_mechanisms([dir, ...])` compiles every `.mod` file of the given folders with NEURON's
`nrnivmodl` once, into a cache directory keyed by the files' contents (and the NEURON version),
and returns that directory; `load_mechanisms(path)` loads its library into NEURON. Builds are
safe against concurrent use: a file lock serialises builders, each build happens in a temporary
directory renamed into place when complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from netbabel.errors import NetbabelError

# catalogue model -> NMODL mechanism (ARTIFICIAL_CELL) name
MECHANISMS = {
    "iaf_psc_exp": "nb_iaf_psc_exp",
    "iaf_psc_alpha": "nb_iaf_psc_alpha",
    "iaf_psc_delta": "nb_iaf_psc_delta",
    "izhikevich": "nb_izhikevich",
    "iaf_cond_exp": "nb_iaf_cond_exp",
    "aeif_cond_exp": "nb_aeif_cond_exp",
    "iaf_cond_alpha": "nb_iaf_cond_alpha",
    "hh_cond_exp_traub": "nb_hh_cond_exp_traub",
    "izhikevich2007_cond_beta": "nb_izhikevich2007_cond_beta",
}
VECSTIM = "VecStim"
_LIBRARY_NAMES = ("libnrnmech.so", "libnrnmech.dylib", "nrnmech.dll")


def mod_dir() -> Path:
    """The folder holding netbabel's .mod files."""
    return Path(__file__).resolve().parent


def mod_files() -> list[Path]:
    """netbabel's .mod files, sorted by name."""
    return sorted(mod_dir().glob("*.mod"))


def cache_root() -> Path:
    """Where compiled mechanisms are kept: $NETBABEL_CACHE, else ~/.cache/netbabel (XDG)."""
    base = os.environ.get("NETBABEL_CACHE")
    if base:
        return Path(base) / "nrnmech"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "netbabel" / "nrnmech"


def _collect(mod_dirs: list[Path]) -> list[Path]:
    files: dict[str, Path] = {}
    for folder in mod_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            raise NetbabelError("not a folder of .mod files", str(folder))
        for path in sorted(folder.glob("*.mod")):
            if path.name in files and files[path.name].read_bytes() != path.read_bytes():
                raise NetbabelError(f"two different files named {path.name} ({files[path.name]})", str(path))
            files[path.name] = path
    if not files:
        raise NetbabelError("no .mod files found", ", ".join(str(d) for d in mod_dirs))
    return [files[name] for name in sorted(files)]


def _neuron_version() -> str:
    try:
        from importlib.metadata import version

        return version("neuron")
    except Exception:  # noqa: BLE001 - a dev build without metadata
        return "unknown"


def mechanisms_hash(files: list[Path]) -> str:
    """A key of the files' names and contents, the NEURON version and the platform."""
    digest = hashlib.sha256()
    digest.update(f"{_neuron_version()}|{sys.platform}|{os.uname().machine}".encode())
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def find_library(directory: Path) -> Path | None:
    """The compiled mechanism library under a folder where nrnivmodl ran, or None."""
    for name in _LIBRARY_NAMES:
        for candidate in sorted(Path(directory).glob(f"*/{name}")) + sorted(Path(directory).glob(f"*/.libs/{name}")):
            return candidate
    return None


def nrnivmodl_command() -> str:
    """The nrnivmodl of the running NEURON installation (beside this Python), else from PATH."""
    beside = Path(sys.executable).parent / "nrnivmodl"
    if beside.exists():
        return str(beside)
    found = shutil.which("nrnivmodl")
    if not found:
        raise NetbabelError("nrnivmodl (NEURON) not found: pip install neuron")
    return found


def _check_compiler() -> None:
    for compiler in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if compiler and shutil.which(compiler):
            return
    raise NetbabelError("compiling NEURON mechanisms (nrnivmodl) needs a C compiler, and none was found "
                        "(install one, e.g. `apt-get install build-essential` or `xcode-select --install`)")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def compile_mechanisms(mod_dirs: list[Path], cache: Path | None = None) -> Path:
    """Compile the .mod files of `mod_dirs` (once) and return the build directory.

    The directory is `<cache>/<hash>`; pass it to `load_mechanisms`. A failing build raises
    NetbabelError with nrnivmodl's output and leaves no partial directory behind.
    """
    files = _collect([Path(d) for d in mod_dirs])
    root = Path(cache) if cache else cache_root()
    target = root / mechanisms_hash(files)
    if find_library(target):
        return target
    with _file_lock(root / f"{target.name}.lock"):
        if find_library(target):
            return target
        _check_compiler()
        build = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
        try:
            for path in files:
                shutil.copyfile(path, build / path.name)
            result = subprocess.run([nrnivmodl_command()], cwd=build, capture_output=True, text=True)
            if result.returncode != 0 or not find_library(build):
                output = (result.stdout + result.stderr).strip().splitlines()
                raise NetbabelError("nrnivmodl failed:\n" + "\n".join(output[-30:]), str(files[0].parent))
            if target.exists():
                shutil.rmtree(target)
            os.replace(build, target)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
    return target


_LOADED: set[str] = set()


def load_mechanisms(directory: Path) -> None:
    """Load a compiled mechanism library into this process's NEURON (once per library)."""
    from neuron import h

    library = find_library(Path(directory))
    if library is None:
        raise NetbabelError("no compiled mechanisms here (run compile_mechanisms first)", str(directory))
    key = str(library.resolve())
    if key not in _LOADED:
        if not h.nrn_load_dll(key):
            raise NetbabelError("NEURON could not load the mechanism library", key)
        _LOADED.add(key)


def compile_and_load(extra_dirs: list[Path] | None = None) -> Path:
    """Compile netbabel's mechanisms (plus `extra_dirs`) and load them into this process."""
    directory = compile_mechanisms([mod_dir(), *(extra_dirs or [])])
    load_mechanisms(directory)
    return directory
