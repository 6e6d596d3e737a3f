"""The `netbabel` command. The only module that knows every format, backend and command.

Format modules follow small protocols (see docs/architecture.md):
- importer: `detect(path) -> bool`, `read(source, options) -> Description`, optional `add_arguments(group)`;
- exporter: `write(description, out, options)` into a temporary path the CLI renames when complete,
  optional `add_arguments(group)` and `SINGLE_FILE = True` when the output is one file;
- backend: `run(description, output, options)` writing a SONATA spike report at `output`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from netbabel import __version__
from netbabel.errors import NetbabelError

IMPORTERS = {
    "netbabel": "netbabel.importers.native",
    "neuroml": "netbabel.importers.neuroml",
    "sonata": "netbabel.importers.sonata",
    "hoc": "netbabel.importers.hoc",
    "multiarea": "netbabel.importers.multiarea",
}
EXPORTERS = {
    "netbabel": "netbabel.exporters.native",
    "yaml": "netbabel.exporters.native",
    "nest": "netbabel.exporters.nest",
    "pynn": "netbabel.exporters.pynn",
    "netpyne": "netbabel.exporters.netpyne",
    "neuroml": "netbabel.exporters.neuroml",
    "sonata": "netbabel.exporters.sonata",
}
BACKENDS = {
    "nest": "netbabel.backends.nest",
    "pynn-nest": "netbabel.backends.pynn",
    "pynn-neuron": "netbabel.backends.pynn",
    "netpyne": "netbabel.backends.netpyne",
    "neuroml": "netbabel.backends.neuroml",
    "neuroml-neuron": "netbabel.backends.neuroml",
    "neuroml-pylems": "netbabel.backends.neuroml",
}


def _module(table: dict[str, str], name: str, kind: str) -> ModuleType:
    if name not in table:
        raise NetbabelError(f"unknown {kind} {name!r} (known: {', '.join(table)})")
    try:
        return importlib.import_module(table[name])
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("netbabel"):
            raise NetbabelError(f"the {kind} {name!r} is not available in this version") from None
        raise NetbabelError(f"the {kind} {name!r} needs the Python package {exc.name!r}: "
                            f"pip install 'netbabel[all]'") from None


def _available(table: dict[str, str]) -> dict[str, ModuleType]:
    found = {}
    for name, path in table.items():
        try:
            found[name] = importlib.import_module(path)
        except ModuleNotFoundError:
            continue
    return found


# -- reading descriptions ---------------------------------------------------------

def split_source(source: str) -> tuple[str | None, str]:
    """`fmt:PATH` names the format explicitly (e.g. `multiarea:../clone`)."""
    head, sep, tail = source.partition(":")
    if sep and head in IMPORTERS and len(head) > 1:
        return head, tail
    return None, source


def detect_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".json", ".yaml", ".yml")) and path.is_file():
        head = path.read_text(errors="replace")[:4096]
        if '"netbabel"' in head or "netbabel:" in head:
            return "netbabel"
    for fmt, module in _available(IMPORTERS).items():
        detect = getattr(module, "detect", None)
        if fmt != "netbabel" and detect and detect(path):
            return fmt
    if name.endswith((".json", ".yaml", ".yml")):
        return "netbabel"
    raise NetbabelError("cannot tell the format of this input: name it with --from FMT or FMT:PATH", str(path))


def read_input(source: str, options: argparse.Namespace) -> Any:
    """Any supported input as a Description (validated, with --set overrides applied)."""
    from netbabel.description import io

    fmt, path_text = split_source(source)
    fmt = getattr(options, "from_format", None) or fmt
    path = Path(path_text)
    if not path.exists():
        raise NetbabelError("no such file or directory", str(path))
    fmt = fmt or detect_format(path)
    overrides = getattr(options, "set", None) or []
    if fmt == "netbabel":
        return io.load(path, overrides=overrides)
    description = _module(IMPORTERS, fmt, "input format").read(path_text, options)
    description.metadata.provenance.append(_provenance(path, fmt))
    if overrides:
        data = io.apply_overrides(description.to_dict(), overrides, str(path))
        return _revalidate(data, description.base_dir, str(path))
    return description


def _provenance(path: Path, fmt: str) -> Any:
    """Which tool converted which file (with its SHA-256) and when."""
    import datetime
    import hashlib

    from netbabel.description import Provenance

    digest = None
    if path.is_file():
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return Provenance(tool=f"netbabel {__version__}", source=str(path), sha256=digest, date=now, format=fmt)


def _revalidate(data: dict, base_dir: Path, name: str) -> Any:
    from netbabel.description import Description, check

    problems = check(data, base_dir=base_dir, file=name)
    if problems:
        raise NetbabelError(problems)
    return Description.from_dict(data, base_dir=base_dir)


# -- commands -------------------------------------------------------------------

def cmd_validate(args: argparse.Namespace) -> int:
    failures = []
    for source in args.files:
        try:
            read_input(source, args)
            print(f"{source}: valid")
        except NetbabelError as exc:
            failures.append(exc)
    if failures:
        raise NetbabelError([p for exc in failures for p in exc.problems])
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from netbabel.description.summary import format_summary, summarize

    description = read_input(args.file, args)
    summary = summarize(description)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from netbabel.atomic import atomic_path

    description = read_input(args.input, args)
    out = Path(args.output)
    fmt = args.to or _format_from_output(out)
    exporter = _module(EXPORTERS, fmt, "output format")
    single = getattr(exporter, "SINGLE_FILE", False)
    if fmt == "yaml":
        args.yaml = True
    with atomic_path(out, directory=not single) as tmp:
        exporter.write(description, tmp, args)
    print(f"wrote {out} ({fmt})", file=sys.stderr)
    return 0


def _format_from_output(out: Path) -> str:
    name = out.name.lower()
    if name.endswith((".yaml", ".yml")):
        return "yaml"
    if name.endswith(".json"):
        return "netbabel"
    if name.endswith((".net.nml", ".nml")):
        return "neuroml"
    raise NetbabelError("cannot tell the output format from the name: give --to FMT", str(out))


def cmd_instantiate(args: argparse.Namespace) -> int:
    from netbabel.instantiate import instantiate_to_directory

    description = read_input(args.model, args)
    instantiate_to_directory(description, Path(args.output), chunk_size=args.chunk_size, processes=args.processes)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from netbabel.backends.options import apply_simulation_options

    description = apply_simulation_options(read_input(args.model, args), args)
    backend = _module(BACKENDS, args.backend, "backend")
    backend.run(description, Path(args.output), args)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from netbabel.compare.cli import compare_command

    return compare_command(args)


def cmd_check(args: argparse.Namespace) -> int:
    from netbabel.compare.check import check_command

    description = read_input(args.model, args)
    runners = {name: _module(BACKENDS, name, "backend") for name in args.backends.split(",")}
    return check_command(description, runners, args)


def cmd_publish(args: argparse.Namespace) -> int:
    from netbabel.atomic import atomic_path

    description = read_input(args.model, args)
    publisher = _module({"osb": "netbabel.publish"}, "osb", "publisher")
    with atomic_path(Path(args.output), directory=True) as tmp:
        publisher.publish(description, tmp, args)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from netbabel.description.schema import SCHEMA_DIR, build_schema, write_schema

    if args.write:
        for path in write_schema(Path(args.directory) if args.directory else SCHEMA_DIR):
            print(path)
    else:
        print(json.dumps(build_schema(), indent=1))
    return 0


# -- parser -----------------------------------------------------------------------

def _common(p: argparse.ArgumentParser, overrides: bool = True) -> None:
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    if overrides:
        p.add_argument("--set", action="append", metavar="PATH=VALUE", default=[],
                       help="override a field, e.g. --set simulation.dt=0.01 (repeatable)")
        p.add_argument("--from", dest="from_format", choices=list(IMPORTERS), help="input format")


def _format_arguments(p: argparse.ArgumentParser, table: dict[str, str], title: str) -> None:
    seen: set[int] = set()
    for name, module in _available(table).items():
        add = getattr(module, "add_arguments", None)
        if add and id(add) not in seen:
            seen.add(id(add))
            add(p.add_argument_group(f"{name} {title}"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netbabel", description="Convert, validate, simulate and compare spiking network models.")
    parser.add_argument("--version", action="version", version=f"netbabel {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, fn: Callable, help_text: str, overrides: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=fn)
        _common(p, overrides)
        return p

    p = command("validate", cmd_validate, "check descriptions (any input format) and report every problem")
    p.add_argument("files", nargs="+", metavar="FILE")
    _format_arguments(p, IMPORTERS, "input options")

    p = command("info", cmd_info, "summarise a model: populations, projections, expected synapses, memory")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print a JSON object instead of tables")
    _format_arguments(p, IMPORTERS, "input options")

    p = command("convert", cmd_convert, "convert a model between formats")
    p.add_argument("input", metavar="IN", help="input file or folder (FMT:PATH names the format)")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    p.add_argument("--to", choices=list(EXPORTERS), help="output format (default: from OUT's name)")
    p.add_argument("--mode", choices=["native", "frozen"], default="native",
                   help="native: simulator's own rules; frozen: explicit edges and input spikes")
    _format_arguments(p, IMPORTERS, "input options")
    _format_arguments(p, EXPORTERS, "output options")

    p = command("instantiate", cmd_instantiate, "draw explicit edges and input spike trains into SONATA HDF5")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--chunk-size", type=int, default=None, help="targets per block in memory (does not change results)")
    p.add_argument("--processes", type=int, default=1, help="worker processes (does not change results)")

    p = command("simulate", cmd_simulate, "simulate a model with one backend and write a SONATA spike report")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--backend", required=True, choices=list(BACKENDS))
    p.add_argument("--mode", choices=["native", "frozen"], default="native")
    p.add_argument("--duration", type=float, help="simulated time in ms")
    p.add_argument("--dt", type=float, help="time step in ms")
    p.add_argument("--seed", type=int, help="master seed")
    p.add_argument("--processes", type=int, default=1, help="MPI processes (mpirun -np N)")
    p.add_argument("--threads", type=int, help="threads per process")
    p.add_argument("--current-step", metavar="AMP_nA,START_ms,STOP_ms",
                   help="add a current step (nA, ms, ms) to --population (default: all neuron populations)")
    p.add_argument("--population", help="population for --current-step")
    p.add_argument("--record-v", action="append", default=[], metavar="P:IDS",
                   help="record the membrane potential of cells IDS (e.g. E:0,1,2) of population P")
    p.add_argument("-o", "--output", required=True, metavar="SPIKES.h5")
    p.add_argument("--workdir", help="keep the exported model and logs here")

    p = command("compare", cmd_compare, "compare two SONATA spike reports", overrides=False)
    p.add_argument("a", metavar="A.h5")
    p.add_argument("b", metavar="B.h5")
    p.add_argument("--exact", action="store_true", help="spike-by-spike comparison instead of statistics")
    p.add_argument("--tolerance", type=float, default=None, help="exact: matching tolerance in ms (default dt/2)")
    p.add_argument("--dt", type=float, default=0.1, help="time step of the runs in ms")
    p.add_argument("--reference", action="append", default=[], metavar="SPIKES.h5",
                   help="further runs of A's simulator with other seeds: their spread is the tolerance")
    p.add_argument("--report", metavar="OUT.html", help="write a self-contained HTML report")

    p = command("check", cmd_check, "simulate one model with several backends and judge their equivalence")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--backends", default="nest,pynn-nest,netpyne")
    p.add_argument("--mode", choices=["native", "frozen"], default="native")
    p.add_argument("--seeds", type=int, default=5,
                   help="seeds of the reference backend for the tolerance (8 or more for ~10%% parameter errors)")
    p.add_argument("--duration", type=float, help="simulated time in ms")
    p.add_argument("--report", metavar="OUT.html")
    p.add_argument("--workdir", help="keep runs here")

    p = command("publish", cmd_publish, "write an Open Source Brain ready NeuroML2 + LEMS + OMV bundle")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("-o", "--output", required=True, metavar="DIR")

    p = command("schema", cmd_schema, "print the JSON Schema, or regenerate schema/ with --write", overrides=False)
    p.add_argument("--write", action="store_true")
    p.add_argument("--directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    debug = "--debug" in argv
    try:
        args = parser.parse_args(argv)
        return args.func(args)
    except NetbabelError as exc:
        if debug:
            raise
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal error: short message unless --debug
        if debug:
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
