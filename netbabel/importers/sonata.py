"""SONATA circuits (Allen Institute / Blue Brain, bmtk) as netbabel descriptions.

Reads `circuit_config.json`, `simulation_config.json`, the older combined `config.json`
(or `config.circuit.json` / `config.simulation.json`), or a folder holding them.
Node populations keep their SONATA names; a population whose node types define
different cells is split into `<population>_<node type>` (the node type's
`pop_name`, or its id). Edge populations become `explicit` projections that
reference the SONATA HDF5 file itself when its node ids, `0/syn_weight` and
`0/delay` mean what netbabel's explicit contract says; otherwise (split
populations, weights or delays only in the edge types CSV, `nsyns`, several
groups) the edges are rewritten once, in chunks, into a derived file in the
work directory (`--sonata-workdir`, default a cache folder keyed by the inputs).

HDF5 is read with h5py in chunks (bounded memory), which also handles the
older Allen-style files libsonata 0.2 rejects (`indicies` groups, explicit
`node_id` datasets, missing `node_population` attributes, `/spikes/gids`).
Units per model type: see `netbabel.converters.sonata` and docs/sonata.md.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from netbabel.converters import sonata as conv
from netbabel.description.catalogue import MODELS
from netbabel.description.model import (CellType, Description, Input, Metadata, Population, Positions, Projection,
                                        Provenance, Quantity, Recording, Rule, SynapseType, VRecording, from_dict,
                                        to_dict)
from netbabel.errors import NetbabelError, UnsupportedFeature
from netbabel.spikereport import write_report

FORMAT = "sonata"
CONFIG_NAMES = ("simulation_config.json", "config.simulation.json", "config.json",
                "circuit_config.json", "config.circuit.json")
CHUNK = 1 << 21  # edges per chunk
INLINE_SPIKES = 1_000_000  # virtual spike trains up to this many spikes (~12 MB of JSON) stay in the description
NULLS = {"", "NULL", "None", "none", "null", "NaN", "nan"}
STEP_TOLERANCE = 1e-9  # ms: a current_clamp stop this close to a pulse start is that start
STEP_CURRENT_KEY = "netbabel_step_current"  # same name as in netbabel/exporters/sonata.py
_NAME_OK = re.compile(r"[^A-Za-z0-9_.\-]")


# -- protocol ----------------------------------------------------------------------

def detect(path: Path) -> bool:
    """A SONATA config (or a folder holding one)."""
    if path.is_dir():
        return any((path / n).is_file() and _looks_like_config(path / n) for n in CONFIG_NAMES)
    if path.suffix.lower() == ".json" and path.is_file():
        return _looks_like_config(path)
    return False


def _looks_like_config(path: Path) -> bool:
    try:
        head = path.read_text(errors="replace")[:20000]
    except OSError:
        return False
    if '"netbabel"' in head:
        return False
    return any(key in head for key in ('"networks"', '"network"', '"node_sets_file"', '"target_simulator"'))


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--sonata-workdir", metavar="DIR",
                       help="SONATA import: folder for derived files (split edges, spikes, positions); "
                            "default: a cache folder keyed by the input files")


def read(source: str, options: argparse.Namespace | None = None) -> Description:
    """Read a SONATA circuit (and its simulation config, if any) into a Description."""
    config = load_config(Path(source))
    workdir = _workdir(config, getattr(options, "sonata_workdir", None) if options else None)
    return _Builder(config, workdir).build()


# -- configs ------------------------------------------------------------------------

@dataclass
class Config:
    path: Path
    data: dict
    components: dict[str, Path] = field(default_factory=dict)
    nodes: list[tuple[Path, list[Path]]] = field(default_factory=list)
    edges: list[tuple[Path, list[Path]]] = field(default_factory=list)
    run: dict = field(default_factory=dict)
    conditions: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    output: dict = field(default_factory=dict)
    reports: dict = field(default_factory=dict)
    node_sets: dict = field(default_factory=dict)
    missing_node_sets: str | None = None


def load_config(path: Path) -> Config:
    """A config file or a folder -> every section resolved to absolute paths."""
    if path.is_dir():
        for name in CONFIG_NAMES:
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise NetbabelError(f"no SONATA config ({', '.join(CONFIG_NAMES)}) in this folder", str(path))
    data = _resolved(path)
    cfg = Config(path=path.resolve(), data=data)
    _merge(cfg, data, path)
    if not cfg.nodes:
        raise NetbabelError("the config names no node files (networks/nodes)", str(path), "/networks/nodes")
    return cfg


def _resolved(path: Path) -> dict:
    """A JSON config with its manifest variables substituted and relative paths made absolute."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise NetbabelError(f"cannot read config: {exc.strerror}", str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NetbabelError(f"invalid JSON: {exc}", str(path)) from None
    if not isinstance(data, dict):
        raise NetbabelError("a SONATA config must be a JSON object", str(path), "/")
    base = path.resolve().parent
    variables = {"configdir": str(base), "workingdir": str(Path.cwd()), "BASE_DIR": str(base)}
    manifest = data.get("manifest", {}) or {}
    for _ in range(10):  # manifest entries may refer to each other
        for key, value in manifest.items():
            variables[key.lstrip("$").strip("{}")] = _substitute(str(value), variables)
    return _walk(data, variables, base)


def _substitute(text: str, variables: dict[str, str]) -> str:
    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        return variables.get(name, m.group(0))
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, text)


def _walk(data: Any, variables: dict[str, str], base: Path, key: str = "") -> Any:
    if isinstance(data, dict):
        return {k: _walk(v, variables, base, k) for k, v in data.items() if k != "manifest"}
    if isinstance(data, list):
        return [_walk(v, variables, base, key) for v in data]
    if isinstance(data, str):
        text = _substitute(data, variables)
        if _is_path_key(key) and text and not Path(text).is_absolute():
            text = str((base / text).resolve())
        return text
    return data


def _is_path_key(key: str) -> bool:
    return (key.endswith(("_file", "_dir", "_path")) or key in ("network", "simulation", "circuit_config",
                                                                  "output_dir", "morphologies_dir"))


def _merge(cfg: Config, data: dict, path: Path) -> None:
    for key in ("network", "circuit_config"):
        ref = data.get(key)
        if isinstance(ref, str) and ref.endswith(".json"):
            sub = Path(ref)
            if not sub.is_file():
                raise NetbabelError(f"network config not found: {sub}", str(path), f"/{key}")
            _merge(cfg, _resolved(sub), sub)
    ref = data.get("simulation")
    if isinstance(ref, str) and ref.endswith(".json"):
        sub = Path(ref)
        if not sub.is_file():
            raise NetbabelError(f"simulation config not found: {sub}", str(path), "/simulation")
        _merge(cfg, _resolved(sub), sub)
    for key, value in (data.get("components") or {}).items():
        cfg.components[key] = Path(value)
    networks = data.get("networks") or {}
    for j, entry in enumerate(networks.get("nodes", []) or []):
        cfg.nodes.append(_network_entry(entry, "nodes", path, j))
    for j, entry in enumerate(networks.get("edges", []) or []):
        cfg.edges.append(_network_entry(entry, "edges", path, j))
    for key in ("run", "conditions", "inputs", "output", "reports"):
        if isinstance(data.get(key), dict):
            getattr(cfg, key).update(data[key])
    if isinstance(data.get("node_sets"), dict):
        cfg.node_sets.update(data["node_sets"])
    if isinstance(data.get("node_sets_file"), str):
        ns = Path(data["node_sets_file"])
        if not ns.is_file():  # the public 300_pointneurons example names one it does not ship
            cfg.missing_node_sets = str(ns)
            return
        try:
            cfg.node_sets.update(json.loads(ns.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise NetbabelError(f"cannot read node sets: {exc}", str(ns)) from None


def _network_entry(entry: dict, kind: str, path: Path, j: int) -> tuple[Path, list[Path]]:
    where = f"/networks/{kind}/{j}"
    h5 = entry.get(f"{kind}_file")
    if not h5:
        raise NetbabelError(f"missing {kind}_file", str(path), where)
    h5p = Path(h5)
    if not h5p.is_file():
        raise NetbabelError(f"file not found: {h5p}", str(path), f"{where}/{kind}_file")
    types = entry.get(f"{kind[:-1]}_types_file")
    type_files = [Path(t) for t in (types if isinstance(types, list) else [types] if types else [])]
    for t in type_files:
        if not t.is_file():
            raise NetbabelError(f"file not found: {t}", str(path), f"{where}/{kind[:-1]}_types_file")
    return h5p, type_files


def _workdir(cfg: Config, requested: str | None) -> Path:
    if requested:
        return Path(requested).resolve()
    h = hashlib.sha256(str(cfg.path).encode())
    for h5, types in [*cfg.nodes, *cfg.edges]:
        for p in (h5, *types):
            st = p.stat()
            h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(json.dumps(cfg.data, sort_keys=True).encode())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (cache / "netbabel" / "sonata" / h.hexdigest()[:16]).resolve()


# -- types CSV ------------------------------------------------------------------------

def read_types_csv(path: Path, id_column: str) -> dict[int, dict[str, str | None]]:
    """A SONATA node/edge types table (space separated, header row) -> {type id: {column: value}}."""
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f, delimiter=" ", quotechar='"', skipinitialspace=True)
                    if r and any(c.strip() for c in r)]
    except OSError as exc:
        raise NetbabelError(f"cannot read types table: {exc.strerror}", str(path)) from None
    if not rows:
        raise NetbabelError("empty types table", str(path))
    header = [h.strip() for h in rows[0]]
    if id_column not in header:
        raise NetbabelError(f"missing column {id_column!r} (columns: {', '.join(header)})", str(path), id_column)
    table: dict[int, dict[str, str | None]] = {}
    for lineno, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            raise NetbabelError(f"line {lineno}: {len(row)} values for {len(header)} columns", str(path))
        values = {h: (None if v.strip() in NULLS else v.strip()) for h, v in zip(header, row)}
        try:
            table[int(values[id_column])] = values
        except (TypeError, ValueError):
            raise NetbabelError(f"line {lineno}: {id_column} {values[id_column]!r} is not an integer",
                                str(path), id_column) from None
    return table


def _types_for(path: Path, id_column: str, h5: Path, kind: str) -> dict[int, dict[str, str | None]]:
    """A types table; its errors name the populations of the HDF5 file it describes."""
    try:
        return read_types_csv(path, id_column)
    except NetbabelError as exc:
        pops = _population_names(h5, kind)
        p = exc.problems[0]
        raise NetbabelError(f"{kind[:-1]} population(s) {', '.join(map(repr, pops))}: {p.message}",
                            p.file, p.pointer) from None


def _population_names(h5: Path, kind: str) -> list[str]:
    import h5py

    try:
        with h5py.File(h5, "r") as f:
            return list(f[kind].keys()) if kind in f else []
    except OSError:
        return []


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


# -- HDF5 helpers ---------------------------------------------------------------------

def _attr_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.size == 1:
        return _attr_text(value.item())
    return str(value)


def _chunks(n: int, size: int = CHUNK) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _group_ids(g: Any) -> list[str]:
    import h5py

    return sorted(k for k, v in g.items() if isinstance(v, h5py.Group) and k.isdigit())


def sanitize(name: str) -> str:
    clean = _NAME_OK.sub("_", name)
    return clean if re.match(r"^[A-Za-z_]", clean) else f"_{clean}"


# -- nodes ----------------------------------------------------------------------------

@dataclass
class Part:
    """The nodes of one SONATA population that become one netbabel population."""

    name: str
    type_ids: list[int]
    indices: np.ndarray  # positions of the nodes in the SONATA population, increasing
    cell: CellType
    model_type: str
    annotations: dict[str, Any]


@dataclass
class NodePop:
    name: str
    file: Path
    type_files: list[Path]
    size: int
    node_ids: np.ndarray | None  # explicit node_id dataset (older style); None means 0..N-1
    parts: list[Part]
    part_of: np.ndarray  # per node: index into parts
    local_of: np.ndarray  # per node: index within its part

    def index_of(self, ids: np.ndarray, file: str, pointer: str) -> np.ndarray:
        """SONATA node ids -> positions in the population (checks the range)."""
        if self.node_ids is None:
            if ids.size and (ids.min() < 0 or ids.max() >= self.size):
                bad = ids[(ids < 0) | (ids >= self.size)][0]
                raise NetbabelError(f"node id {int(bad)} out of range for node population {self.name!r} "
                                    f"of {self.size} nodes", file, pointer)
            return ids
        pos = np.searchsorted(self._sorted_ids, ids)
        pos = np.clip(pos, 0, self.size - 1)
        ok = self._sorted_ids[pos] == ids
        if not ok.all():
            raise NetbabelError(f"node id {int(ids[~ok][0])} does not exist in node population {self.name!r}",
                                file, pointer)
        return self._order[pos]

    def __post_init__(self) -> None:
        if self.node_ids is not None:
            self._order = np.argsort(self.node_ids, kind="stable")
            self._sorted_ids = self.node_ids[self._order]


class _Builder:
    def __init__(self, config: Config, workdir: Path):
        self.cfg = config
        self.workdir = workdir
        self.desc = Description(name=sanitize(config.path.parent.name or "sonata"), base_dir=config.path.parent)
        self.node_pops: dict[str, NodePop] = {}
        self.derived: dict[str, Path] = {}
        self.run = config.run

    # the work directory receives derived files, each written atomically
    def derived_path(self, name: str) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        return self.workdir / name

    def build(self) -> Description:
        d = self.desc
        d.metadata = Metadata(title=f"SONATA circuit {self.cfg.path.parent.name}")
        for nodes_file, type_files in self.cfg.nodes:
            self._read_nodes(nodes_file, type_files)
        for edges_file, type_files in self.cfg.edges:
            self._read_edges(edges_file, type_files)
        self._simulation()
        self._inputs()
        d.metadata.provenance.append(Provenance(
            tool="netbabel sonata importer", source=str(self.cfg.path), format="sonata",
            options={"nodes": [[str(h5), [str(t) for t in ts]] for h5, ts in self.cfg.nodes],
                     "edges": [[str(h5), [str(t) for t in ts]] for h5, ts in self.cfg.edges],
                     "components": {k: str(v) for k, v in self.cfg.components.items()},
                     "workdir": str(self.workdir)}))
        from netbabel.description import check

        problems = check(d.to_dict(), base_dir=d.base_dir, file=str(self.cfg.path))
        if problems:
            raise NetbabelError(problems)
        return d

    # -- nodes -------------------------------------------------------------------
    def _read_nodes(self, nodes_file: Path, type_files: list[Path]) -> None:
        types: dict[int, dict] = {}
        type_file_of: dict[int, Path] = {}
        for tf in type_files:
            table = _types_for(tf, "node_type_id", nodes_file, "nodes")
            types.update(table)
            type_file_of.update({k: tf for k in table})
        with _sonata_h5(nodes_file, "nodes") as f:
            for pop_name, g in f["nodes"].items():
                self._read_node_population(nodes_file, type_files, pop_name, g, types, type_file_of)

    def _read_node_population(self, nodes_file: Path, type_files: list[Path], pop_name: str, g: Any,
                              types: dict[int, dict], type_file_of: dict[int, Path]) -> None:
        where = f"/nodes/{pop_name}"
        fname = str(nodes_file)
        if "node_type_id" not in g:
            raise NetbabelError(f"node population {pop_name!r}: missing dataset node_type_id", fname,
                                f"{where}/node_type_id")
        type_ids = np.asarray(g["node_type_id"][()], dtype=np.int64)
        n = type_ids.size
        if n == 0:
            raise NetbabelError(f"node population {pop_name!r} is empty", fname, where)
        for ds in ("node_group_id", "node_group_index", "node_id"):
            if ds in g and g[ds].shape[0] != n:
                raise NetbabelError(f"node population {pop_name!r}: {ds} has {g[ds].shape[0]} entries but "
                                    f"node_type_id has {n} (mismatched index datasets)", fname, f"{where}/{ds}")
        node_ids = None
        if "node_id" in g:
            node_ids = np.asarray(g["node_id"][()], dtype=np.int64)
            if np.array_equal(node_ids, np.arange(n)):
                node_ids = None
            elif np.unique(node_ids).size != n:
                raise NetbabelError(f"node population {pop_name!r}: node_id values are not unique", fname,
                                    f"{where}/node_id")
        group_ids = (np.asarray(g["node_group_id"][()], dtype=np.int64) if "node_group_id" in g
                     else np.zeros(n, dtype=np.int64))
        group_index = (np.asarray(g["node_group_index"][()], dtype=np.int64) if "node_group_index" in g
                       else np.arange(n))
        groups = _group_ids(g)
        for gid in np.unique(group_ids):
            if str(gid) not in groups:
                if not groups and gid == 0:
                    continue
                raise NetbabelError(f"node population {pop_name!r}: node_group_id {gid} has no group {gid}",
                                    fname, f"{where}/node_group_id")
        cells: dict[int, tuple[CellType, str]] = {}
        for tid in np.unique(type_ids):
            tid = int(tid)
            if tid not in types:
                raise NetbabelError(f"node population {pop_name!r}: node_type_id {tid} is not in the node types "
                                    f"table", ", ".join(map(str, type_files)) or fname, "node_type_id")
            cells[tid] = self._cell_of_type(types[tid], tid, pop_name, type_file_of[tid], g, type_ids,
                                            group_ids, group_index)
        # group node types that define the same cell
        keys: dict[str, list[int]] = {}
        for tid, (cell, _mt) in cells.items():
            keys.setdefault(json.dumps(to_dict(cell), sort_keys=True), []).append(tid)
        labels = self._labels(pop_name, list(cells), types)
        base = sanitize(pop_name)
        parts: list[Part] = []
        part_of = np.zeros(n, dtype=np.int32)
        local_of = np.zeros(n, dtype=np.int64)
        for j, tids in enumerate(keys.values()):
            mask = np.isin(type_ids, tids)
            indices = np.flatnonzero(mask)
            part_of[indices] = j
            local_of[indices] = np.arange(indices.size)
            name = base if len(keys) == 1 else sanitize(f"{pop_name}_{labels[tids[0]]}")
            cell, model_type = cells[tids[0]]
            annotations: dict[str, Any] = {"sonata": {"population": pop_name, "node_type_ids": sorted(tids),
                                                      "nodes_file": str(nodes_file),
                                                      "node_types_files": [str(t) for t in type_files],
                                                      "model_type": model_type}}
            for col in ("pop_name", "model_name", "ei", "location", "layer"):
                vals = {types[t].get(col) for t in tids}
                if len(vals) == 1 and None not in vals:
                    annotations[col] = vals.pop()
            parts.append(Part(name, sorted(tids), indices, cell, model_type, annotations))
        pop = NodePop(pop_name, nodes_file, type_files, n, node_ids, parts, part_of, local_of)
        if pop_name in self.node_pops:
            raise NetbabelError(f"node population {pop_name!r} is defined twice", fname, where)
        self.node_pops[pop_name] = pop
        positions = self._positions(g, group_ids, group_index)
        for part in parts:
            if part.name in self.desc.populations:
                raise NetbabelError(f"two SONATA node populations map to the netbabel name {part.name!r}",
                                    fname, where)
            self.desc.cell_types[part.name] = part.cell
            population = Population(cell_type=part.name, size=int(part.indices.size), annotations=part.annotations)
            population.v_init = self._v_init(part, types, type_file_of)
            if positions is not None:
                path = self.derived_path(f"positions_{part.name}.h5")
                _write_h5(path, {"positions": positions[part.indices]})
                population.positions = Positions(type="file", file=str(path))
            self.desc.populations[part.name] = population

    @staticmethod
    def _v_init(part: Any, types: dict[int, dict], type_file_of: dict[int, Path]) -> Any:
        """The v_init netbabel's SONATA export wrote in the `netbabel_v_init` column (None without it)."""
        texts = {types[t].get(conv.V_INIT_COLUMN) for t in part.type_ids}
        if texts == {None}:
            return None
        tid = part.type_ids[0]
        try:
            if len(texts) != 1:
                raise ValueError("node types of one population disagree")
            value = json.loads(texts.pop())
            if not isinstance(value, (int, float, dict)):
                raise ValueError("expected a number or a distribution")
            return from_dict(Quantity, value)
        except (ValueError, TypeError) as exc:
            raise NetbabelError(f"node_type_id {tid}: column {conv.V_INIT_COLUMN}: {exc}", str(type_file_of[tid]),
                                conv.V_INIT_COLUMN) from None

    def _labels(self, pop_name: str, tids: list[int], types: dict[int, dict]) -> dict[int, str]:
        for column in ("pop_name", "model_name"):
            names = [types[t].get(column) for t in tids]
            if None not in names and len(set(names)) == len(names):
                return {t: str(nm) for t, nm in zip(tids, names)}
        return {t: str(t) for t in tids}

    def _positions(self, g: Any, group_ids: np.ndarray, group_index: np.ndarray) -> np.ndarray | None:
        groups = _group_ids(g)
        if not groups:
            return None
        out = np.zeros((group_ids.size, 3))
        for gid in np.unique(group_ids):
            grp = g[str(gid)]
            mask = group_ids == gid
            idx = group_index[mask]
            if "positions" in grp:
                out[mask] = np.asarray(grp["positions"][()])[idx, :3]
            elif all(k in grp for k in ("x", "y", "z")):
                for c, k in enumerate("xyz"):
                    out[mask, c] = np.asarray(grp[k][()])[idx]
            else:
                return None
        return out

    def _cell_of_type(self, row: dict, tid: int, pop_name: str, type_file: Path, g: Any, type_ids: np.ndarray,
                      group_ids: np.ndarray, group_index: np.ndarray) -> tuple[CellType, str]:
        fname = str(type_file)
        where = f"node_type_id {tid} (population {pop_name})"
        model_type = row.get("model_type")
        if "model_type" not in row:
            raise NetbabelError(f"population {pop_name!r}: missing column 'model_type'", fname, "model_type")
        if model_type not in conv.KNOWN_MODEL_TYPES:
            raise UnsupportedFeature(f"population {pop_name!r}, {where}: unknown model_type {model_type!r} "
                                     f"(known: {', '.join(conv.KNOWN_MODEL_TYPES)})", fname, "model_type")
        if model_type == conv.VIRTUAL:
            return CellType(model="spike_generator", params={"spike_times": []}), model_type
        if model_type in conv.POINT_MODEL_TYPES:
            if row.get("model_template") is None:
                raise NetbabelError(f"population {pop_name!r}, {where}: missing column 'model_template'", fname,
                                    "model_template")
            model = conv.nest_model(row["model_template"], fname, "model_template")
            dynamics = self._dynamics(row, "point_neuron_models_dir", fname, pop_name)
            per_node = self._node_dynamics(g, type_ids == tid, group_ids, group_index, pop_name,
                                           skip={"V_m"} if row.get(conv.V_INIT_COLUMN) else set())
            dynamics.update(per_node)
            params = conv.point_params_in(model, dynamics, fname, f"dynamics_params of node_type_id {tid}")
            return CellType(model=model, params=params), model_type
        # biophysical
        template = row.get("model_template") or ""
        if template and not template.lower().endswith("biophys1.hoc"):
            raise UnsupportedFeature(f"population {pop_name!r}, {where}: model_template {template!r} is not "
                                     "supported (only ctdb:Biophys1.hoc style SWC + Allen dynamics params)",
                                     fname, "model_template")
        if row.get("morphology") is None:
            raise NetbabelError(f"population {pop_name!r}, {where}: missing column 'morphology'", fname, "morphology")
        morph = self._component(row["morphology"], "morphologies_dir", fname, "morphology", suffix=".swc")
        dyn_path = self._component(row.get("dynamics_params"), "biophysical_neuron_models_dir", fname,
                                   "dynamics_params")
        dynamics = _read_json(dyn_path)
        mod_dir = self.cfg.components.get("mechanisms_dir")
        mods = sorted(str(p) for p in (mod_dir / "modfiles").glob("*.mod")) if mod_dir else []
        if mod_dir and not mods:
            mods = sorted(str(p) for p in mod_dir.glob("*.mod"))
        cell = conv.biophysical_cell_in(morph, dynamics, row.get("model_processing"),
                                        float(self.run.get("dL", conv.DEFAULT_DL)),
                                        float(self.run.get("spike_threshold", conv.DEFAULT_SPIKE_THRESHOLD)),
                                        mods, fname, where)
        cell.source = {"format": "sonata", "morphology": str(morph), "dynamics_params": str(dyn_path),
                       "model_template": template or "ctdb:Biophys1.hoc",
                       "model_processing": row.get("model_processing"),
                       "sections_sha256": conv.sections_digest(cell)}
        return cell, model_type

    def _component(self, name: str | None, directory: str, fname: str, field_name: str, suffix: str = "") -> Path:
        if not name:
            raise NetbabelError(f"missing {field_name}", fname, field_name)
        p = Path(name)
        if suffix and not p.suffix:
            p = p.with_suffix(suffix)
        candidates = [p] if p.is_absolute() else []
        if directory in self.cfg.components:
            candidates.append(self.cfg.components[directory] / p)
        candidates.append(self.cfg.path.parent / p)
        for c in candidates:
            if c.is_file():
                return c.resolve()
        raise NetbabelError(f"{field_name} file {name!r} not found (looked in {directory}: "
                            f"{self.cfg.components.get(directory, 'not set')})", fname, field_name)

    def _dynamics(self, row: dict, directory: str, fname: str, pop_name: str) -> dict:
        name = row.get("dynamics_params")
        if name is None:
            return {}
        if name.strip().startswith("{"):
            try:
                return json.loads(name)
            except json.JSONDecodeError as exc:
                raise NetbabelError(f"population {pop_name!r}: dynamics_params is not valid JSON ({exc})",
                                    fname, "dynamics_params") from None
        return _read_json(self._component(name, directory, fname, "dynamics_params"))

    def _node_dynamics(self, g: Any, mask: np.ndarray, group_ids: np.ndarray, group_index: np.ndarray,
                       pop_name: str, skip: set[str]) -> dict:
        """Per-node dynamics params (group/dynamics_params/*): allowed when equal within a node type
        (`skip`: names read elsewhere, e.g. V_m drawn from netbabel's v_init)."""
        out: dict[str, float] = {}
        for gid in np.unique(group_ids[mask]):
            grp = g.get(str(gid))
            if grp is None or "dynamics_params" not in grp:
                continue
            idx = group_index[mask & (group_ids == gid)]
            for key, ds in grp["dynamics_params"].items():
                if key in skip:
                    continue
                vals = np.asarray(ds[()])[idx]
                if vals.size and not np.all(vals == vals[0]):
                    raise UnsupportedFeature(f"population {pop_name!r}: per-node dynamics param {key!r} varies "
                                             "within a node type (netbabel parameters are per cell type)",
                                             g.file.filename, f"{g.name}/{gid}/dynamics_params/{key}")
                if vals.size:
                    out[key] = float(vals[0])
        return out

    # -- edges -------------------------------------------------------------------
    def _read_edges(self, edges_file: Path, type_files: list[Path]) -> None:
        types: dict[int, dict] = {}
        for tf in type_files:
            types.update(_types_for(tf, "edge_type_id", edges_file, "edges"))
        with _sonata_h5(edges_file, "edges") as f:
            for name, g in f["edges"].items():
                _EdgeReader(self, edges_file, type_files, name, g, types).read()

    # -- simulation ----------------------------------------------------------------
    def _simulation(self) -> None:
        sim = self.desc.simulation
        run = self.cfg.run
        if "tstop" in run:
            sim.duration = float(run["tstop"]) - float(run.get("tstart", 0.0))
        if "dt" in run:
            sim.dt = float(run["dt"])
        if "random_seed" in run:
            sim.seed = int(run["random_seed"])
        cond = self.cfg.conditions
        if "celsius" in cond:
            sim.temperature = float(cond["celsius"])
        if "v_init" in cond:
            sim.v_init = float(cond["v_init"])
        sim.record = Recording(spikes="all")
        for name, rep in self.cfg.reports.items():
            if rep.get("variable_name") != "v" or rep.get("module", "membrane_report") != "membrane_report":
                continue
            for pop in self._node_set(rep.get("cells", "all"), f"/reports/{name}/cells"):
                size = self.desc.size(pop)
                sim.record.v.append(VRecording(population=pop, ids=list(range(min(size, 100)))))

    def _node_set(self, spec: Any, pointer: str) -> list[str]:
        """netbabel populations a node set names (whole populations only)."""
        if spec == "all" or spec is None:
            return list(self.desc.populations)
        if isinstance(spec, str):
            if spec in self.cfg.node_sets:
                return self._node_set(self.cfg.node_sets[spec], pointer)
            if spec in self.node_pops:
                return [p.name for p in self.node_pops[spec].parts]
            if spec in self.desc.populations:
                return [spec]
            missing = f" (the node sets file {self.cfg.missing_node_sets} does not exist)" \
                if self.cfg.missing_node_sets else ""
            raise NetbabelError(f"unknown node set {spec!r}{missing}", str(self.cfg.path), pointer)
        if isinstance(spec, list):
            return [p for s in spec for p in self._node_set(s, pointer)]
        if isinstance(spec, dict):
            pops = spec.get("population")
            names = pops if isinstance(pops, list) else [pops] if pops else list(self.node_pops)
            out = []
            for pname in names:
                if pname not in self.node_pops:
                    raise NetbabelError(f"node set names the unknown population {pname!r}", str(self.cfg.path),
                                        pointer)
                parts = self.node_pops[pname].parts
                other = {k: v for k, v in spec.items() if k != "population"}
                if "node_type_id" in other:
                    wanted = set(other.pop("node_type_id") if isinstance(spec["node_type_id"], list)
                                 else [other.pop("node_type_id")])
                    parts = [p for p in parts if set(p.type_ids) <= wanted]
                if "model_type" in other:
                    mt = other.pop("model_type")
                    parts = [p for p in parts if p.model_type == mt]
                if "node_id" in other:  # accepted when it lists whole node types (netbabel's export does)
                    parts = self._parts_of_ids(self.node_pops[pname], parts, other.pop("node_id"), pointer)
                if other:
                    raise UnsupportedFeature(f"node set filters {sorted(other)} are not supported (whole "
                                             "populations, node_type_id, model_type or node_id only)",
                                             str(self.cfg.path), pointer)
                out.extend(p.name for p in parts)
            return out
        raise NetbabelError(f"invalid node set {spec!r}", str(self.cfg.path), pointer)

    def _parts_of_ids(self, pop: Any, parts: list, ids: Any, pointer: str) -> list:
        """The parts (netbabel populations) whose nodes are exactly the node ids listed."""
        wanted = np.unique(np.asarray(ids if isinstance(ids, list) else [ids], dtype=np.int64))
        chosen, covered = [], []
        for part in parts:
            part_ids = part.indices if pop.node_ids is None else pop.node_ids[part.indices]
            inside = np.isin(part_ids, wanted)
            if inside.all():
                chosen.append(part)
                covered.append(part_ids)
            elif inside.any():
                raise UnsupportedFeature(f"node set lists some nodes of {part.name!r} but not all (netbabel inputs "
                                         "target whole populations)", str(self.cfg.path), pointer)
        if sum(c.size for c in covered) != wanted.size:
            raise NetbabelError("node set lists node ids that are not in the population", str(self.cfg.path), pointer)
        return chosen

    def _inputs(self) -> None:
        for name, inp in _join_step_current_parts(self.cfg.inputs).items():
            where = f"/inputs/{name}"
            kind = inp.get("input_type")
            if kind == "spikes":
                self._spike_input(name, inp, where)
            elif kind in ("current_clamp",):
                self._current_clamp(name, inp, where)
            else:
                raise UnsupportedFeature(f"input_type {kind!r} is not supported (spikes, current_clamp)",
                                         str(self.cfg.path), f"{where}/input_type")

    def _spike_input(self, name: str, inp: dict, where: str) -> None:
        path = Path(inp.get("input_file", ""))
        if not path.is_file():
            raise NetbabelError(f"spike file not found: {path}", str(self.cfg.path), f"{where}/input_file")
        spikes = read_spikes(path, inp.get("module"))
        targets = self._node_set(inp.get("node_set"), f"{where}/node_set")
        for pop_name in targets:
            cell = self.desc.cell_types[self.desc.populations[pop_name].cell_type]
            if cell.model != "spike_generator":
                raise UnsupportedFeature(f"spike input {name!r} targets {pop_name!r}, which is not a virtual "
                                         "population", str(self.cfg.path), f"{where}/node_set")
            sonata_pop = self.desc.populations[pop_name].annotations["sonata"]["population"]
            pop = self.node_pops[sonata_pop]
            part = next(p for p in pop.parts if p.name == pop_name)
            ids, times = spikes.get(sonata_pop) or spikes.get(None) or (np.zeros(0, np.int64), np.zeros(0))
            ids = np.asarray(ids, dtype=np.int64)
            index = pop.index_of(ids, str(path), "/spikes/node_ids")
            keep = pop.part_of[index] == pop.parts.index(part)
            local = pop.local_of[index[keep]]
            times = np.asarray(times, dtype=np.float64)[keep]
            if local.size <= INLINE_SPIKES:  # small inputs stay in the description, readable by every exporter
                order = np.lexsort((times, local))
                bounds = np.searchsorted(local[order], np.arange(part.indices.size + 1))
                t_sorted = times[order]
                cell.params = {"spike_times": [t_sorted[bounds[i]:bounds[i + 1]].tolist()
                                               for i in range(part.indices.size)]}
            else:
                out = self.derived_path(f"spikes_{pop_name}.h5")
                write_spike_file(out, pop_name, local, times)
                cell.params = {"spike_file": str(out)}

    def _current_clamp(self, name: str, inp: dict, where: str) -> None:
        amps = inp.get("amp")
        delays = inp.get("delay", 0.0)
        durations = inp.get("duration")
        if amps is None or durations is None:
            raise NetbabelError("current_clamp needs amp and duration", str(self.cfg.path), where)
        for pop_name in self._node_set(inp.get("node_set"), f"{where}/node_set"):
            cell = self.desc.cell_types[self.desc.populations[pop_name].cell_type]
            section = {"section": cell.spike_detection.section if cell.spike_detection else "soma", "x": 0.5} \
                if cell.model == "multicompartment" else {}
            if isinstance(amps, list):
                dls, dus = (v if isinstance(v, list) else [v] for v in (delays, durations))  # bmtk: scalar = list of one
                if not len(amps) == len(dls) == len(dus):
                    raise NetbabelError("current_clamp lists amp, delay and duration must have the same length",
                                        str(self.cfg.path), where)
                pulses = [(float(dl), float(dl) + float(du), conv.current_clamp_in(a, cell.model == "multicompartment"))
                          for a, dl, du in zip(amps, dls, dus)]
                times, values = _step_current(pulses, self.desc.value(self.desc.simulation.duration))
                self.desc.inputs.append(Input(type="step_current", target=pop_name, name=sanitize(f"{name}_{pop_name}"),
                                              amplitudes=values, times=times, **section))
            else:
                start = float(delays)
                self.desc.inputs.append(Input(type="dc", target=pop_name, name=sanitize(f"{name}_{pop_name}"),
                                              amplitude=conv.current_clamp_in(amps, cell.model == "multicompartment"), start=start,
                                              stop=start + float(durations), **section))


def _join_step_current_parts(inputs: dict[str, dict]) -> dict[str, dict]:
    """current_clamp entries marked with STEP_CURRENT_KEY (the parts netbabel's exporter writes
    one step current as, for bmtk PointNet) joined back into one entry of all their pulses."""
    lists = ("amp", "delay", "duration")
    out: dict[str, dict] = {}
    for name, inp in inputs.items():
        key = inp.get(STEP_CURRENT_KEY) if inp.get("input_type") == "current_clamp" else None
        first = out.get(key) if key != name else None  # the exporter names the first part as the input
        if first is not None and first.get("node_set") == inp.get("node_set") \
                and all(isinstance(x.get(k), list) for x in (first, inp) for k in lists):
            out[key] = {**first, **{k: first[k] + inp[k] for k in lists}}
        else:
            out[name] = inp
    return out


def _step_current(pulses: list[tuple[float, float, float]], duration: float) -> tuple[list[float], list[float]]:
    """current_clamp pulses (start, stop, amplitude) -> step_current (times, amplitudes).

    Pulses add up where they overlap (one IClamp each, as in bmtk BioNet). A stop within
    STEP_TOLERANCE of another pulse's start is that start (the exporter writes contiguous
    steps as stop - start), so contiguous pulses give one change of amplitude, never a
    time twice; equal neighbouring amplitudes merge, and a final return to zero at or after
    the end of the simulation is dropped (the exporter's last step lasts until the end).
    """
    starts = sorted({start for start, _stop, _amp in pulses})

    def snap(t: float) -> float:
        near = [s for s in starts if abs(s - t) <= STEP_TOLERANCE]
        return near[0] if near else t

    pieces = [(start, snap(stop), amp) for start, stop, amp in pulses]
    times, values = [], []
    for t in sorted({t for start, stop, _amp in pieces for t in (start, stop)}):
        value = sum(amp for start, stop, amp in pieces if start <= t < stop)
        if value != (values[-1] if values else 0.0):
            times.append(t)
            values.append(value)
    if values and values[-1] == 0.0 and times[-1] >= duration:
        times.pop()
        values.pop()
    return (times, values) if times else (starts[:1] or [0.0], [0.0])


# -- edges ------------------------------------------------------------------------------

@dataclass
class EdgeType:
    id: int
    weight: float | None  # syn_weight * nsyns from the table, None when per edge
    syn_weight: float | None
    nsyns: float | None
    delay: float | None
    synapse: SynapseType
    site: Any  # SynapseSite onto a multicompartment target, or None


class _EdgeReader:
    """One SONATA edge population -> explicit projections (referencing the file, or derived)."""

    def __init__(self, builder: _Builder, edges_file: Path, type_files: list[Path], name: str, g: Any,
                 types: dict[int, dict]):
        self.b, self.file, self.type_files, self.name, self.g, self.types = builder, edges_file, type_files, name, g, types
        self.fname = str(edges_file)
        self.where = f"/edges/{name}"

    def _err(self, message: str, pointer: str = "") -> NetbabelError:
        return NetbabelError(f"edge population {self.name!r}: {message}", self.fname, f"{self.where}{pointer}")

    def read(self) -> None:
        g = self.g
        for ds in ("source_node_id", "target_node_id"):
            if ds not in g:
                raise self._err(f"missing dataset {ds}", f"/{ds}")
        n = g["source_node_id"].shape[0]
        for ds in ("target_node_id", "edge_type_id", "edge_group_id", "edge_group_index"):
            if ds in g and g[ds].shape[0] != n:
                raise self._err(f"{ds} has {g[ds].shape[0]} entries but source_node_id has {n} "
                                "(mismatched index datasets)", f"/{ds}")
        if "edge_type_id" not in g:
            raise self._err("missing dataset edge_type_id", "/edge_type_id")
        self.n = n
        self.src = self._node_pop("source_node_id")
        self.tgt = self._node_pop("target_node_id")
        self.groups = _group_ids(g)
        self._check_indices()
        scan = self._scan()
        self.edge_types = {tid: self._edge_type(tid) for tid in scan["type_ids"]}
        direct = self._direct(scan)
        if direct:
            self._add_direct(scan)
        else:
            self._add_derived()

    def _node_pop(self, ds: str) -> NodePop:
        attr = _attr_text(self.g[ds].attrs.get("node_population"))
        if attr is None:
            pops = self.b.node_pops
            guess = self.name.split("_to_")
            if len(guess) == 2 and guess[0 if ds.startswith("source") else 1] in pops:
                attr = guess[0 if ds.startswith("source") else 1]
            elif len(pops) == 1:
                attr = next(iter(pops))
            else:
                raise self._err(f"{ds} has no node_population attribute and the population cannot be inferred",
                                f"/{ds}")
        if attr not in self.b.node_pops:
            raise self._err(f"{ds} refers to the node population {attr!r}, which no nodes file defines "
                            f"(known: {', '.join(self.b.node_pops)})", f"/{ds}")
        return self.b.node_pops[attr]

    def _check_indices(self) -> None:
        for name in ("indices", "indicies"):
            if name not in self.g:
                continue
            for direction, pop in (("source_to_target", self.src), ("target_to_source", self.tgt)):
                grp = self.g[name].get(direction)
                if grp is None:
                    continue
                key = "node_id_to_ranges" if "node_id_to_ranges" in grp else "node_id_to_range"  # bmtk's name
                if key not in grp or "range_to_edge_id" not in grp:
                    raise self._err(f"index {name}/{direction} lacks node_id_to_ranges or range_to_edge_id",
                                    f"/{name}/{direction}")
                ranges = grp[key]
                if ranges.shape[0] not in (pop.size, 0) and pop.node_ids is None:
                    raise self._err(f"{name}/{direction}/{key} has {ranges.shape[0]} rows for "
                                    f"{pop.size} nodes (mismatched index datasets)", f"/{name}/{direction}/{key}")
                r2e = grp["range_to_edge_id"]
                if r2e.ndim != 2 or r2e.shape[1] != 2:
                    raise self._err(f"{name}/{direction}/range_to_edge_id must have two columns",
                                    f"/{name}/{direction}/range_to_edge_id")
                # the first and last blocks (a full scan costs as much as reading the edges again)
                blocks = [slice(0, min(r2e.shape[0], 1 << 16)), slice(max(0, r2e.shape[0] - (1 << 16)), r2e.shape[0])]
                for sl in blocks:
                    block = r2e[sl]
                    if block.size and (block.min() < 0 or block.max() > self.n):
                        raise self._err(f"{name}/{direction}/range_to_edge_id points beyond the {self.n} edges "
                                        "(mismatched index datasets)", f"/{name}/{direction}/range_to_edge_id")

    def _scan(self) -> dict:
        """One chunked pass: node id ranges, edge type ids, weight signs."""
        g = self.g
        type_ids: set[int] = set()
        per_edge = self._per_edge_columns()
        wmin, wmax = np.inf, -np.inf
        arange_groups = True
        for sl in _chunks(self.n):
            self.src.index_of(np.asarray(g["source_node_id"][sl], dtype=np.int64), self.fname,
                              f"{self.where}/source_node_id")
            self.tgt.index_of(np.asarray(g["target_node_id"][sl], dtype=np.int64), self.fname,
                              f"{self.where}/target_node_id")
            type_ids.update(_distinct(g["edge_type_id"][sl]))
            simple = True
            if "edge_group_id" in g:
                gid = g["edge_group_id"][sl]
                gix = g["edge_group_index"][sl] if "edge_group_index" in g else None
                simple = not (gid.size and (gid.min() != 0 or gid.max() != 0)) and gix is not None and (
                    gix.size == 0 or (int(gix[0]) == sl.start and int(gix[-1]) == sl.stop - 1 and
                                      bool(np.all(np.diff(gix) == 1))))
                arange_groups = arange_groups and simple
            if "syn_weight" in per_edge:
                w = (np.asarray(g["0"]["syn_weight"][sl]) if simple and self.groups == ["0"]
                     else self._column("syn_weight", sl))
                if w.size:
                    wmin, wmax = min(wmin, float(w.min())), max(wmax, float(w.max()))
        return {"type_ids": sorted(int(t) for t in type_ids), "per_edge": per_edge, "wmin": wmin, "wmax": wmax,
                "simple_groups": arange_groups and self.groups in ([], ["0"])}

    def _per_edge_columns(self) -> set[str]:
        cols: set[str] = set()
        for gid in self.groups:
            cols.update(k for k in self.g[gid].keys())
        return cols

    def _column(self, name: str, sl: slice) -> np.ndarray:
        """Per-edge values of a group column for a slice of edges (NaN where a group lacks it)."""
        g = self.g
        if self.groups == ["0"]:
            gix = g["edge_group_index"][sl] if "edge_group_index" in g else np.arange(sl.start, sl.stop)
            gid = g["edge_group_id"][sl] if "edge_group_id" in g else np.zeros(sl.stop - sl.start, np.int64)
            if name in g["0"] and np.all(gid == 0):
                ds = g["0"][name]
                if gix.size and np.array_equal(gix, np.arange(gix[0], gix[0] + gix.size)):
                    return np.asarray(ds[int(gix[0]):int(gix[0]) + gix.size], dtype=np.float64)
                uniq, inv = np.unique(gix, return_inverse=True)
                return np.asarray(ds[uniq], dtype=np.float64)[inv]
        out = np.full(sl.stop - sl.start, np.nan)
        gid = g["edge_group_id"][sl] if "edge_group_id" in g else np.zeros(sl.stop - sl.start, np.int64)
        gix = g["edge_group_index"][sl] if "edge_group_index" in g else np.arange(sl.start, sl.stop)
        for grp in self.groups:
            mask = gid == int(grp)
            if not mask.any() or name not in g[grp]:
                continue
            uniq, inv = np.unique(gix[mask], return_inverse=True)
            out[mask] = np.asarray(g[grp][name][uniq], dtype=np.float64)[inv]
        return out

    def _edge_type(self, tid: int) -> EdgeType:
        tfile = ", ".join(map(str, self.type_files)) or self.fname
        if tid not in self.types:
            raise NetbabelError(f"edge population {self.name!r}: edge_type_id {tid} is not in the edge types table",
                                tfile, "edge_type_id")
        row = self.types[tid]
        wf = row.get("weight_function")
        if wf not in (None, "", "default", "default_weight_fnc", "wmax", "static_weight"):
            raise UnsupportedFeature(f"edge population {self.name!r}, edge_type_id {tid}: weight_function {wf!r} is "
                                     "a Python function netbabel cannot evaluate", tfile, "weight_function")
        syn_weight, nsyns, delay = _number(row.get("syn_weight")), _number(row.get("nsyns")), _number(row.get("delay"))
        weight = None if syn_weight is None else syn_weight * (nsyns if nsyns is not None else 1.0)
        dyn: dict = {}
        dp = row.get("dynamics_params")
        if dp:
            dyn = _read_json(self.b._component(dp, "synaptic_models_dir", tfile, "dynamics_params"))
        site = None
        if any(p.cell.model == "multicompartment" for p in self.tgt.parts):
            sections = _parse_list(row.get("target_sections")) or ["somatic"]
            erev = float(dyn.get("erev", dyn.get("e", 0.0)))
            receptor = "excitatory" if erev > -20.0 else "inhibitory"
            site = (sections, row.get("model_template"), dyn, receptor, dp)
            synapse = SynapseType(model="static", receptor=receptor)
        else:
            if delay is None and "delay" not in self._per_edge_columns():
                # bmtk PointNet passes the synapse JSON to NEST: its delay, else NEST's default
                delay = float(dyn.get("delay", conv.NEST_DEFAULT_DELAY))
            receptor = conv.receptor_of_sign(weight if weight is not None else 1.0)
            synapse = conv.synapse_in(row.get("model_template"), dyn, receptor, tfile,
                                      f"edge_type_id {tid}/model_template")
        return EdgeType(tid, weight, syn_weight, nsyns, delay, synapse, site)

    def _direct(self, scan: dict) -> bool:
        """Can the projection reference the file as it is (netbabel's explicit contract)?"""
        if len(self.src.parts) != 1 or len(self.tgt.parts) != 1:
            return False
        if self.src.node_ids is not None or self.tgt.node_ids is not None or not scan["simple_groups"]:
            return False
        per_edge = scan["per_edge"]
        if "nsyns" in per_edge or "syn_weight" not in per_edge or "delay" not in per_edge:
            return False  # netbabel's explicit edges carry 0/syn_weight and 0/delay per edge
        ets = list(self.edge_types.values())
        if len({json.dumps(to_dict(e.synapse), sort_keys=True) for e in ets}) != 1:
            return False
        if len({json.dumps(e.site, sort_keys=True, default=str) for e in ets}) != 1:
            return False
        if "syn_weight" in per_edge:
            if any(e.nsyns not in (None, 1.0) for e in ets):
                return False
            if self._conductance_target() and scan["wmin"] < 0:
                return False
            if ets[0].synapse.receptor == "excitatory" and scan["wmin"] < 0 and not self._multicompartment_target():
                ets[0].synapse = SynapseType(model=ets[0].synapse.model,
                                             receptor="inhibitory" if scan["wmax"] <= 0 else "excitatory",
                                             params=ets[0].synapse.params)
        return True

    def _conductance_target(self) -> bool:
        return any(p.cell.model in MODELS and MODELS[p.cell.model].synapse == "conductance" for p in self.tgt.parts)

    def _multicompartment_target(self) -> bool:
        return any(p.cell.model == "multicompartment" for p in self.tgt.parts)

    def _synapse_name(self, et: EdgeType, target_part: Part, receptor: str | None = None) -> str:
        synapse = et.synapse if receptor is None else SynapseType(model=et.synapse.model, receptor=receptor,
                                                                  params=et.synapse.params)
        if et.site is not None:
            sections, template, dyn, rec, dp = et.site
            section = _site_section(target_part.cell, sections)
            site = conv.synapse_site_in(template, dyn, section, self.fname, f"edge_type_id {et.id}")
            stem = sanitize(Path(dp).stem if dp else (template or "syn"))
            site_name = sanitize(f"{stem}_{section.replace('[', '').replace(']', '')}")
            cell = target_part.cell
            cell.synapses = cell.synapses or {}
            cell.synapses[site_name] = site
            synapse = SynapseType(model="static", receptor=rec, site=site_name)
        types = self.b.desc.synapse_types
        for name, existing in types.items():
            if existing == synapse:
                return name
        name = sanitize(f"{synapse.site or synapse.model}_{synapse.receptor}")
        k = 1
        while name in types:
            k += 1
            name = sanitize(f"{synapse.site or synapse.model}_{synapse.receptor}_{k}")
        types[name] = synapse
        return name

    def _add_direct(self, scan: dict) -> None:
        et = next(iter(self.edge_types.values()))
        src, tgt = self.src.parts[0], self.tgt.parts[0]
        weight = et.weight
        if weight is None or "syn_weight" in scan["per_edge"]:
            weight = scan["wmin"] if et.synapse.receptor == "inhibitory" else scan["wmax"]
        if self._conductance_target() or self._multicompartment_target():
            weight = abs(weight)
        delay = et.delay if et.delay is not None else float(np.asarray(self._column("delay", slice(0, min(self.n, 1)))
                                                                        ).mean() if self.n else 1.0)
        self.b.desc.projections.append(Projection(
            source=src.name, target=tgt.name, name=self._unique(sanitize(self.name)),
            rule=Rule(type="explicit", file=str(self.file.resolve()), population=self.name),
            weight=float(weight), delay=float(delay), synapse_type=self._synapse_name(et, tgt)))

    def _unique(self, name: str) -> str:
        names = {p.name for p in self.b.desc.projections}
        k, out = 1, name
        while out in names:
            k += 1
            out = f"{name}_{k}"
        return out

    def _add_derived(self) -> None:
        """Rewrite the edges into one population per (source part, target part, synapse type)."""
        import h5py

        g = self.g
        per_edge = self._per_edge_columns()
        ets = self.edge_types
        tid_list = sorted(ets)
        et_weight = np.array([np.nan if ets[t].syn_weight is None else ets[t].syn_weight for t in tid_list])
        et_nsyns = np.array([1.0 if ets[t].nsyns is None else ets[t].nsyns for t in tid_list])
        et_delay = np.array([np.nan if ets[t].delay is None else ets[t].delay for t in tid_list])
        sign_split = not self._multicompartment_target()
        path = self.b.derived_path(f"edges_{sanitize(self.name)}.h5")
        tmp = path.with_name(path.name + ".partial")
        outputs: dict[tuple[int, int, int, int], dict] = {}
        with h5py.File(tmp, "w") as out:
            root = out.create_group("edges")
            for sl in _chunks(self.n):
                s = self.src.index_of(np.asarray(g["source_node_id"][sl], dtype=np.int64), self.fname, "")
                t = self.tgt.index_of(np.asarray(g["target_node_id"][sl], dtype=np.int64), self.fname, "")
                etype = np.asarray(g["edge_type_id"][sl], dtype=np.int64)
                k = np.searchsorted(tid_list, etype)
                sw = self._column("syn_weight", sl) if "syn_weight" in per_edge else np.full(k.size, np.nan)
                sw = np.where(np.isnan(sw), et_weight[k], sw)
                ns = self._column("nsyns", sl) if "nsyns" in per_edge else np.full(k.size, np.nan)
                ns = np.where(np.isnan(ns), et_nsyns[k], ns)
                w = conv.edge_weight_in(sw, ns)
                dl = self._column("delay", sl) if "delay" in per_edge else np.full(k.size, np.nan)
                dl = np.where(np.isnan(dl), et_delay[k], dl)
                if np.isnan(w).any():
                    raise self._err("edges without syn_weight (neither per edge nor in the edge types table)",
                                    "/0/syn_weight")
                if np.isnan(dl).any():
                    raise self._err("edges without delay (neither per edge nor in the edge types table)", "/0/delay")
                sign = (w < 0).astype(np.int64) if sign_split else np.zeros(k.size, np.int64)
                sp, tp = self.src.part_of[s], self.tgt.part_of[t]
                key = ((sp.astype(np.int64) * len(self.tgt.parts) + tp) * len(tid_list) + k) * 2 + sign
                for kv in _distinct(key):
                    m = slice(None) if key[0] == key[-1] and _distinct(key) == [kv] else key == kv
                    kk = int(kv)
                    sg, kk = kk % 2, kk // 2
                    ki, kk = kk % len(tid_list), kk // len(tid_list)
                    tpi, spi = kk % len(self.tgt.parts), kk // len(self.tgt.parts)
                    self._append(root, outputs, (spi, tpi, ki, sg), {
                        "source_node_id": self.src.local_of[s[m]].astype(np.uint64),
                        "target_node_id": self.tgt.local_of[t[m]].astype(np.uint64),
                        "edge_type_id": etype[m],
                        "0/syn_weight": np.abs(w[m]) if (self._conductance_target() or
                                                         self._multicompartment_target()) else w[m],
                        "0/delay": dl[m],
                        "sonata_edge_id": (np.arange(key.size) if isinstance(m, slice) else
                                           np.flatnonzero(m)).astype(np.uint64) + sl.start,
                    })
        os.replace(tmp, path)
        # merge edge types that give the same projection (same parts and synapse type)
        for (spi, tpi, ki, sg), info in outputs.items():
            et = ets[tid_list[ki]]
            sp, tp = self.src.parts[spi], self.tgt.parts[tpi]
            receptor = None if not sign_split else ("inhibitory" if sg else "excitatory")
            syn = self._synapse_name(et, tp, receptor)
            weight = info["wsum"] / info["count"]
            self.b.desc.projections.append(Projection(
                source=sp.name, target=tp.name, name=self._unique(sanitize(info["name"])),
                rule=Rule(type="explicit", file=str(path), population=info["name"]),
                weight=float(weight), delay=float(info["dsum"] / info["count"]), synapse_type=syn))

    def _append(self, root: Any, outputs: dict, key: tuple, data: dict[str, np.ndarray]) -> None:
        spi, tpi, ki, sg = key
        if key not in outputs:
            sp, tp = self.src.parts[spi], self.tgt.parts[tpi]
            tid = sorted(self.edge_types)[ki]
            parts = [self.name]
            if len(self.src.parts) > 1 or len(self.tgt.parts) > 1:
                parts += [sp.name, tp.name]
            if len(self.edge_types) > 1:
                parts.append(str(tid))
            if sg:
                parts.append("inh")
            name = sanitize(".".join(parts))
            grp = root.create_group(name)
            grp.attrs["sonata_file"] = str(self.file.resolve())
            grp.attrs["sonata_population"] = self.name
            for ds, arr in data.items():
                d = grp.create_dataset(ds, shape=(0,), maxshape=(None,), dtype=arr.dtype, chunks=(1 << 16,))
                if ds == "source_node_id":
                    d.attrs["node_population"] = sp.name
                elif ds == "target_node_id":
                    d.attrs["node_population"] = tp.name
            grp.create_dataset("edge_group_id", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1 << 16,))
            grp.create_dataset("edge_group_index", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1 << 16,))
            outputs[key] = {"name": name, "group": grp, "count": 0, "wsum": 0.0, "dsum": 0.0}
        info = outputs[key]
        grp = info["group"]
        n0, m = info["count"], data["source_node_id"].size
        for ds, arr in data.items():
            d = grp[ds]
            d.resize((n0 + m,))
            d[n0:] = arr
        grp["edge_group_id"].resize((n0 + m,))
        grp["edge_group_id"][n0:] = 0
        grp["edge_group_index"].resize((n0 + m,))
        grp["edge_group_index"][n0:] = np.arange(n0, n0 + m)
        info["count"] += m
        info["wsum"] += float(data["0/syn_weight"].sum())
        info["dsum"] += float(data["0/delay"].sum())


def _distinct(values: np.ndarray) -> list[int]:
    """Distinct values of an integer array (fast path when all are equal)."""
    if values.size == 0:
        return []
    lo, hi = values.min(), values.max()
    if lo == hi:
        return [int(lo)]
    return np.unique(values).tolist()


def _site_section(cell: CellType, sections: list[str]) -> str:
    lists = cell.section_lists or {}
    for s in sections:
        lst = conv.ALLEN_SECTION_LISTS.get(s, s)
        if lists.get(lst):
            return lists[lst][0]
    return cell.spike_detection.section if cell.spike_detection else cell.sections[0].name


def _parse_list(text: str | None) -> list[str]:
    if not text:
        return []
    return [t for t in re.findall(r"[A-Za-z_]+", text)]


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise NetbabelError(f"cannot read: {exc.strerror}", str(path)) from None
    except json.JSONDecodeError as exc:
        raise NetbabelError(f"invalid JSON: {exc}", str(path)) from None
    if not isinstance(data, dict):
        raise NetbabelError("expected a JSON object", str(path))
    return data


def _write_h5(path: Path, datasets: dict[str, np.ndarray]) -> None:
    import h5py

    tmp = path.with_name(path.name + ".partial")
    with h5py.File(tmp, "w") as f:
        for k, v in datasets.items():
            f.create_dataset(k, data=v)
    os.replace(tmp, path)


# -- spike files ------------------------------------------------------------------------

def read_spikes(path: Path, module: str | None = None) -> dict[str | None, tuple[np.ndarray, np.ndarray]]:
    """SONATA spike file (HDF5 new or old style, or CSV) -> {population or None: (node ids, times ms)}."""
    if path.suffix.lower() in (".csv", ".txt") or module == "csv":
        return _read_spikes_csv(path)
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise NetbabelError(f"not a readable HDF5 spike file ({exc})", str(path)) from None
    out: dict[str | None, tuple[np.ndarray, np.ndarray]] = {}
    with f:
        if "spikes" not in f:
            raise NetbabelError("no /spikes group", str(path))
        root = f["spikes"]
        if "timestamps" in root and ("gids" in root or "node_ids" in root):  # older bmtk style
            ids = root["gids"] if "gids" in root else root["node_ids"]
            out[None] = (np.asarray(ids[()], np.int64), _ms(root["timestamps"]))
            return out
        for pop, g in root.items():
            if "timestamps" not in g:
                continue
            ids = g["node_ids"] if "node_ids" in g else g.get("gids")
            if ids is None or ids.shape != g["timestamps"].shape:
                raise NetbabelError("node_ids and timestamps differ in length", str(path), f"/spikes/{pop}")
            out[pop] = (np.asarray(ids[()], np.int64), _ms(g["timestamps"]))
    return out


def _ms(ds: Any) -> np.ndarray:
    t = np.asarray(ds[()], dtype=np.float64)
    unit = _attr_text(ds.attrs.get("units")) or "ms"
    return t * 1000.0 if unit == "s" else t


def _read_spikes_csv(path: Path) -> dict[str | None, tuple[np.ndarray, np.ndarray]]:
    by_pop: dict[str | None, tuple[list, list]] = {}
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=" ", skipinitialspace=True))
    if not rows:
        return {}
    header = rows[0]
    try:
        it, ig = header.index("timestamps"), header.index("node_ids") if "node_ids" in header else header.index("gids")
    except ValueError:
        raise NetbabelError("spike CSV needs the columns timestamps and node_ids", str(path)) from None
    ip = header.index("population") if "population" in header else None
    for lineno, row in enumerate(rows[1:], 2):
        if not row:
            continue
        try:
            pop = row[ip] if ip is not None else None
            ids, times = by_pop.setdefault(pop, ([], []))
            times.append(float(row[it]))
            ids.append(int(row[ig]))
        except (ValueError, IndexError):
            raise NetbabelError(f"line {lineno}: invalid spike row", str(path)) from None
    return {p: (np.asarray(i, np.int64), np.asarray(t)) for p, (i, t) in by_pop.items()}


@contextlib.contextmanager
def _sonata_h5(path: Path, root: str) -> Iterator[Any]:
    """An open SONATA nodes/edges HDF5 file that has the `/root` group, or a located NetbabelError."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise NetbabelError(f"not a readable HDF5 file ({exc})", str(path)) from None
    with f:
        if root not in f:
            raise NetbabelError(f"no /{root} group: not a SONATA {root} file", str(path))
        yield f


def write_spike_file(path: Path, population: str, node_ids: np.ndarray, times: np.ndarray) -> None:
    """netbabel's spike layout (/spikes/<population>/timestamps in ms, node_ids), sorted by time."""
    write_report(path, {population: (node_ids, times)})
