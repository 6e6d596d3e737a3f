"""NEURON hoc templates (`begintemplate ... endtemplate`) as multicompartment cell types.

    netbabel convert cell.hoc --template Name --mod-dir mod/ [--load first.hoc]... [--args ARG...] -o cell.json

hoc is code: importing a template runs it. The `.mod` files are compiled with
nrnivmodl (cached by content, see `netbabel.nmodl`), then a separate Python
process (`netbabel.importers.hoc_probe`, run in the current directory, as
nrniv would be) loads the files, builds one cell and reports what it built:
sections and topology, 3-D points (or L and diam), nseg, Ra, cm, density
mechanisms and their parameters (per segment when not uniform), ion settings,
section lists, synapse point processes, the spike detection site, the NEURON
globals the files changed, celsius and v_init. This process's NEURON (if any)
is never touched.

The result holds one population of one cell of the imported type, named
after the template. Mechanism files are referenced relative to the output
description (`-o`), so keep them where they are or copy them along.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from netbabel.description.model import (CellType, Description, Metadata, Population, Section,
                                        SpikeDetection, SynapseSite)
from netbabel.errors import NetbabelError

FORMAT = "hoc"
PROBE_TIMEOUT_S = 600
_NOISE = ("Warning: no DISPLAY environment variable", "--No graphics will be displayed")
_STACK = ("xopen(", "execute1(", "load_file(")


def detect(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".hoc"


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--template", metavar="NAME",
                       help="hoc: name of the template to instantiate (importing runs the hoc code, see docs/hoc.md)")
    group.add_argument("--mod-dir", action="append", default=[], metavar="DIR",
                       help="hoc: folder of the .mod files the template needs (repeatable)")
    group.add_argument("--load", action="append", default=[], metavar="FILE",
                       help="hoc: file to load before the template file (repeatable, in order)")
    group.add_argument("--args", nargs="+", default=[], metavar="ARG",
                       help="hoc: constructor arguments (numbers stay numbers, anything else is a string)")


def constructor_argument(text: str) -> float | str:
    """`3` -> 3.0, `-1e-3` -> -0.001, anything else stays a string (hoc's $s)."""
    try:
        return float(text)
    except ValueError:
        return text


def read(source: str, options: argparse.Namespace) -> Description:
    """Run the template in a subprocess and describe the cell it builds."""
    path = Path(source)
    template = getattr(options, "template", None)
    if not template:
        raise NetbabelError("a hoc file needs --template NAME (the template to instantiate)", source)
    if not path.is_file():
        raise NetbabelError("no such file", source)
    loads = [Path(p) for p in getattr(options, "load", None) or []]
    for extra in loads:
        if not extra.is_file():
            raise NetbabelError("no such file (--load)", str(extra))
    mod_dirs = [Path(p) for p in getattr(options, "mod_dir", None) or []]
    mod_files = _mod_files(mod_dirs)
    library = _compile(mod_dirs) if mod_files else None
    args = [constructor_argument(a) for a in getattr(options, "args", None) or []]
    spec = {"mechanisms": str(library) if library else None, "load": [str(p.resolve()) for p in loads],
            "file": str(path.resolve()), "template": template, "args": args}
    result = run_probe(spec, source)
    for warning in result.get("warnings", []):
        print(f"warning: {source}: {warning}", file=sys.stderr)
    output = getattr(options, "output", None)
    base_dir = Path(output).resolve().parent if output else Path.cwd()
    return build_description(result, template, source, [str(p) for p in loads], args,
                             [str(d) for d in mod_dirs], mod_files, base_dir)


def _mod_files(mod_dirs: list[Path]) -> list[Path]:
    files = []
    for folder in mod_dirs:
        if not folder.is_dir():
            raise NetbabelError("no such folder (--mod-dir)", str(folder))
        found = sorted(folder.glob("*.mod"))
        if not found:
            raise NetbabelError("no .mod files in this folder (--mod-dir)", str(folder))
        files.extend(p.resolve() for p in found)
    return files


def _compile(mod_dirs: list[Path]) -> Path:
    """The compiled mechanism library (nrnivmodl in netbabel's cache, never in the user's folders)."""
    from netbabel.nmodl import compile_mechanisms, find_library

    directory = compile_mechanisms(mod_dirs)
    library = find_library(directory)
    if library is None:
        raise NetbabelError("nrnivmodl produced no library", str(directory))
    return library


def _neuron_output(text: str) -> str:
    """NEURON's own error lines, without the hoc call stack of netbabel's loader."""
    lines = []
    for line in text.splitlines():
        if not line.strip() or line.startswith(_NOISE):
            continue
        if line.startswith("NEURON: hoc_Load_file") or line.lstrip().startswith(_STACK):
            if lines and line.startswith("NEURON: hoc_Load_file"):
                break
            continue
        lines.append(line.removeprefix("NEURON: "))
    return "\n".join(lines[:20])


def run_probe(spec: dict, source: str) -> dict:
    """Run `hoc_probe` in a fresh Python process; NEURON's messages become the error on failure."""
    with tempfile.TemporaryDirectory(prefix="netbabel-hoc-") as tmp:
        spec_path, result_path = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec_path.write_text(json.dumps(spec))
        env = dict(os.environ, NEURON_MODULE_OPTIONS="-nogui")
        try:
            proc = subprocess.run([sys.executable, "-m", "netbabel.importers.hoc_probe", str(spec_path),
                                   str(result_path)], capture_output=True, text=True, env=env,
                                  timeout=PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise NetbabelError(f"the template did not finish building within {PROBE_TIMEOUT_S} s", source) from None
        result = json.loads(result_path.read_text()) if result_path.exists() else None
    neuron_says = _neuron_output(proc.stderr + "\n" + proc.stdout)
    if result is None or proc.returncode != 0 or "error" in result:
        message = (result or {}).get("error") or f"NEURON stopped (exit status {proc.returncode})"
        if neuron_says:
            message += "\nNEURON: " + neuron_says.replace("\n", "\nNEURON: ")
        if "is not a MECHANISM" in neuron_says:
            message += "\n(is the mechanism's .mod file in a --mod-dir folder?)"
        raise NetbabelError(message, source)
    return result


def _relative(path: Path, base_dir: Path) -> str:
    try:
        return os.path.relpath(path, base_dir)
    except ValueError:  # another drive (Windows)
        return str(path)


def build_description(result: dict, template: str, source: str, loads: list[str], args: list[Any],
                      mod_dirs: list[str], mod_files: list[Path], base_dir: Path) -> Description:
    """The probe's report as a description: one population of one cell of the imported type."""
    cell = result["cell"]
    sections = [_section(s) for s in cell["sections"]]
    synapses = {name: SynapseSite(mechanism=s["mechanism"], section=s["section"], x=s["x"], params=s["params"])
                for name, s in (cell.get("synapses") or {}).items()}
    det = cell.get("spike_detection")
    origin = {"format": "hoc", "file": source, "template": template, "args": args, "load": loads,
              "mod_dirs": mod_dirs}
    if result.get("warnings"):
        origin["warnings"] = result["warnings"]
    cell_type = CellType(
        model="multicompartment", params=cell.get("params") or {}, sections=sections,
        section_lists=cell.get("section_lists"), mod_files=[_relative(p, base_dir) for p in mod_files] or None,
        spike_detection=SpikeDetection(**det) if det else None, synapses=synapses or None, source=origin)
    name = _identifier(template)
    d = Description(name=name, metadata=Metadata(
        title=f"{template} (hoc template from {Path(source).name})",
        description="One cell of a NEURON hoc template, imported by running the template in NEURON."))
    d.cell_types[name] = cell_type
    d.populations[name] = Population(cell_type=name, size=1)
    sim = result.get("simulation", {})
    d.simulation.temperature = sim.get("temperature")
    d.simulation.v_init = sim.get("v_init")
    if sim.get("dt"):
        d.simulation.dt = sim["dt"]
    d.base_dir = base_dir
    _check(d, source)
    return d


def _section(data: dict) -> Section:
    known = {k: v for k, v in data.items() if k in Section.__dataclass_fields__}
    return Section(**known)


def _identifier(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text) or "cell"


def _check(d: Description, source: str) -> None:
    from netbabel.description import check

    problems = check(d.to_dict(), base_dir=d.base_dir, file=source)
    if problems:
        raise NetbabelError(problems)
