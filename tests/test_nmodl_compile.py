"""compile_mechanisms: cached by content, safe under concurrent builds, clear errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netbabel.errors import NetbabelError
from netbabel.nmodl import compile_mechanisms, find_library, mod_dir, mod_files

pytest.importorskip("neuron")


def _one_mod(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mod_dir() / "vecstim.mod", folder / "vecstim.mod")
    return folder


def test_package_ships_mod_files() -> None:
    names = {p.name for p in mod_files()}
    assert {"vecstim.mod", "nb_iaf_psc_exp.mod", "nb_iaf_psc_alpha.mod", "nb_iaf_psc_delta.mod",
            "nb_iaf_cond_exp.mod", "nb_iaf_cond_alpha.mod", "nb_aeif_cond_exp.mod", "nb_izhikevich.mod",
            "nb_hh_cond_exp_traub.mod"} <= names
    for path in mod_files():
        assert "THREADSAFE" in path.read_text(), path.name


def test_concurrent_builds_share_one_cached_directory(tmp_path: Path) -> None:
    source = _one_mod(tmp_path / "mods")
    cache = tmp_path / "cache"
    code = ("import sys; from pathlib import Path; from netbabel.nmodl import compile_mechanisms; "
            "print(compile_mechanisms([Path(sys.argv[1])], cache=Path(sys.argv[2])))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(source), str(cache)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    dirs = {o[0].strip().splitlines()[-1] for o in outs}
    assert len(dirs) == 1
    built = Path(dirs.pop())
    assert find_library(built) is not None
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [built.name]  # no temporary build left
    # cached: a second call returns at once, the same folder; other content -> another folder
    assert compile_mechanisms([source], cache=cache) == built
    (source / "vecstim.mod").write_text((source / "vecstim.mod").read_text() + "\n: changed\n")
    assert compile_mechanisms([source], cache=cache) != built


def test_missing_compiler_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _one_mod(tmp_path / "mods")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("CC", raising=False)
    with pytest.raises(NetbabelError, match="needs a C compiler"):
        compile_mechanisms([source], cache=tmp_path / "cache")


def test_broken_mod_file_is_reported_and_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "broken.mod").write_text("NEURON { SUFFIX broken RANGE x }\nPARAMETER { x = }\n")
    cache = tmp_path / "cache"
    with pytest.raises(NetbabelError, match="nrnivmodl failed"):
        compile_mechanisms([folder], cache=cache)
    assert not [p for p in cache.iterdir() if p.is_dir()]


def test_no_mod_files_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NetbabelError, match="no .mod files"):
        compile_mechanisms([tmp_path], cache=tmp_path / "cache")
