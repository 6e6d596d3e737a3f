"""netbabel descriptions as SONATA circuits (bmtk / libsonata readable).

Writes `circuit_config.json`, `simulation_config.json`, `node_sets.json`,
`network/nodes.h5` + `network/node_types.csv` (cells), `network/virtual_nodes.h5` +
`network/virtual_node_types.csv` (spike sources), `network/edges.h5` +
`network/edge_types.csv`, `components/` (NEST dynamics params JSON per point
cell type, synapse params, SWC morphologies and Allen-style params of
biophysical cells) and `inputs/` (SONATA spike files of virtual populations).

Rule-based projections and Poisson inputs are first drawn by
`netbabel.instantiate` (explicit edges and spike trains). Populations and
edge populations that came from SONATA (annotations `sonata`, derived edge
files) are written back as the SONATA populations they came from, with every
node and edge attribute of the original files, so that SONATA -> netbabel ->
SONATA keeps the circuit element by element. Units: see docs/sonata.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from netbabel.converters import sonata as conv
from netbabel.description.catalogue import MODELS, MULTICOMPARTMENT
from netbabel.description.model import CellType, Description, to_dict
from netbabel.errors import NetbabelError, UnsupportedFeature
from netbabel.spikereport import write_report

FORMAT = "sonata"
SINGLE_FILE = False
CHUNK = 1 << 21
MODEL_COLUMNS = ("model_type", "model_template", "dynamics_params", "morphology", "model_processing")
STEP_CURRENT_KEY = "netbabel_step_current"  # current_clamp parts of one netbabel step_current input


def write(description: Description, out: Path, options: argparse.Namespace | None = None) -> None:
    """Write `description` as a SONATA circuit into the (empty) directory `out`."""
    out = Path(out)
    if _needs_instantiation(description):
        try:
            from netbabel.instantiate import instantiate_to_directory
        except ImportError:
            raise UnsupportedFeature("rule-based projections and Poisson inputs need netbabel.instantiate, "
                                     "which is not available in this version") from None
        with tempfile.TemporaryDirectory(prefix="netbabel-sonata-") as tmp:
            instantiate_to_directory(description, Path(tmp))
            from netbabel.description import load

            explicit = load(Path(tmp) / "model.json")
            _Writer(explicit, out).write()
    else:
        _Writer(description, out).write()


def _needs_instantiation(d: Description) -> bool:
    return any(p.rule.type != "explicit" for p in d.projections) or any(i.type == "poisson" for i in d.inputs)


@dataclass
class NodeMap:
    """Where a netbabel population went: SONATA population and node ids (None: 0..n-1)."""

    population: str
    ids: np.ndarray | None
    size: int  # size of the SONATA population


class _Writer:
    def __init__(self, d: Description, out: Path):
        self.d, self.out = d, out
        self.net = out / "network"
        self.comp = out / "components"
        self.maps: dict[str, NodeMap] = {}
        self.sonata_sizes: dict[str, int] = {}
        # one types table per HDF5 file (type ids of the public examples repeat across files)
        self.node_rows: dict[str, list[dict]] = {}
        self.edge_rows: dict[str, list[dict]] = {}
        self.used_node_types: set[int] = set()
        self.used_edge_types: set[int] = set()
        self.files: dict[str, Any] = {}
        self.cell_files: dict[str, dict] = {}
        self.inputs: dict[str, dict] = {}
        self.provenance = next((p.options for p in d.metadata.provenance
                                if p.tool == "netbabel sonata importer" and p.options), {}) or {}
        self.has_mc = any(ct.model == MULTICOMPARTMENT for ct in d.cell_types.values())

    def write(self) -> None:
        for sub in ("network", "components/point_neuron_models", "components/synaptic_models", "inputs"):
            (self.out / sub).mkdir(parents=True, exist_ok=True)
        self.write_nodes()
        self.write_edges()
        self.write_spike_inputs()
        self.write_current_inputs()
        self.finish_nodes()
        self.write_configs()

    # -- nodes --------------------------------------------------------------------
    def write_nodes(self) -> None:
        groups = self._origin_groups()
        try:
            for (nodes_file, spop), members in groups.items():
                self._copy_population(self._root(_stem(nodes_file, "nodes"), "nodes"), nodes_file, spop, members)
            for name in self.d.populations:
                if name not in self.maps:
                    self._fresh_population(self._root("virtual_nodes" if self._virtual(name) else "nodes", "nodes"),
                                           name)
        finally:
            self._close()

    def _root(self, stem: str, kind: str) -> Any:
        """The /nodes or /edges group of network/<stem>.h5 (opened once, created on first use)."""
        import h5py

        if stem not in self.files:
            path = self.net / f"{stem}.h5"
            self.files[stem] = h5py.File(path, "a" if path.exists() else "w")
            (self.node_rows if kind == "nodes" else self.edge_rows).setdefault(stem, [])
        return self.files[stem].require_group(kind)

    def _close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files = {}

    def _virtual(self, population: str) -> bool:
        return self.d.cell_types[self.d.populations[population].cell_type].model == "spike_generator"

    def finish_nodes(self) -> None:
        """node_id datasets (bmtk 1.2 reads populations through them), edge indices, one types table per file."""
        import h5py

        for stem in self.node_rows:
            with h5py.File(self.net / f"{stem}.h5", "a") as f:
                for g in f["nodes"].values():
                    if "node_id" not in g:
                        g.create_dataset("node_id", data=np.arange(g["node_type_id"].shape[0], dtype=np.uint64))
            rows = self.node_rows[stem]
            if all(r.get("model_type") == conv.VIRTUAL for r in rows):
                rows = [{k: v for k, v in r.items() if k in ("node_type_id", "model_type", "pop_name") or
                         (v is not None and k not in MODEL_COLUMNS)} for r in rows]
            self._write_csv(self.net / f"{_types_name(stem)}.csv", rows, "node_type_id")
        for stem in list(self.edge_rows):
            path = self.net / f"{stem}.h5"
            if not _h5_names(path, "edges"):  # opened for spike inputs that needed no edges: not part of the circuit
                path.unlink(missing_ok=True)
                del self.edge_rows[stem]
                continue
            missing = []
            with h5py.File(path, "r") as f:
                for name, g in f["edges"].items():
                    if "indices" not in g and "indicies" not in g:
                        missing.append((name, self.sonata_sizes[_text(g["source_node_id"].attrs["node_population"])],
                                        self.sonata_sizes[_text(g["target_node_id"].attrs["node_population"])]))
            if missing:  # copied populations without indices get them (bmtk needs them, libsonata writes them)
                import libsonata

                for name, n_source, n_target in missing:
                    libsonata.EdgePopulation.write_indices(str(path), name, n_source, n_target, False)
            with h5py.File(path, "a") as f:
                for g in f["edges"].values():
                    for direction in ("source_to_target", "target_to_source"):
                        idx = g.get(f"indices/{direction}")
                        if idx is not None and "node_id_to_ranges" in idx and "node_id_to_range" not in idx:
                            idx["node_id_to_range"] = idx["node_id_to_ranges"]  # bmtk 1.2's name: a hard link
            self._write_csv(self.net / f"{_types_name(stem)}.csv", self.edge_rows[stem], "edge_type_id")

    def _origin_groups(self) -> dict[tuple[str, str], list[str]]:
        """netbabel populations that, together, are a whole SONATA node population of an existing file."""
        import h5py

        by_origin: dict[tuple[str, str], list[str]] = {}
        for name, pop in self.d.populations.items():
            s = pop.annotations.get("sonata") if isinstance(pop.annotations, dict) else None
            if isinstance(s, dict) and s.get("population") and s.get("nodes_file") and s.get("node_type_ids"):
                by_origin.setdefault((s["nodes_file"], s["population"]), []).append(name)
        whole = {}
        for (nodes_file, spop), members in by_origin.items():
            if not Path(nodes_file).is_file():
                continue
            with h5py.File(nodes_file, "r") as f:
                if spop not in f.get("nodes", {}):
                    continue
                type_ids = np.asarray(f["nodes"][spop]["node_type_id"][()])
            covered = set()
            ok = True
            for name in members:
                tids = self.d.populations[name].annotations["sonata"]["node_type_ids"]
                covered.update(tids)
                if int(np.isin(type_ids, tids).sum()) != self.d.size(name):
                    ok = False
            if ok and covered == set(np.unique(type_ids).tolist()):
                whole[(nodes_file, spop)] = members
        return whole

    def _copy_population(self, root: Any, nodes_file: str, spop: str, members: list[str]) -> None:
        import h5py

        with h5py.File(nodes_file, "r") as src:
            g = src["nodes"][spop]
            src.copy(g, root, name=spop)
            type_ids = np.asarray(g["node_type_id"][()])
            node_ids = np.asarray(g["node_id"][()]) if "node_id" in g else None
        self.sonata_sizes[spop] = type_ids.size
        rows = self._original_rows(members[0])
        for name in members:
            tids = self.d.populations[name].annotations["sonata"]["node_type_ids"]
            idx = np.flatnonzero(np.isin(type_ids, tids))
            self.maps[name] = NodeMap(spop, idx if node_ids is None else node_ids[idx], type_ids.size)
            for tid in tids:
                row = dict(rows.get(int(tid), {"node_type_id": str(tid)}))
                row.update(self._model_columns(name, row))
                self.node_rows[self._stem_of(root)].append(row)
                self.used_node_types.add(int(tid))

    def _stem_of(self, root: Any) -> str:
        return Path(root.file.filename).stem

    def _original_rows(self, name: str) -> dict[int, dict]:
        rows: dict[int, dict] = {}
        for tf in self.d.populations[name].annotations["sonata"].get("node_types_files", []):
            rows.update(_read_csv(Path(tf), "node_type_id"))
        return rows

    def _fresh_population(self, root: Any, name: str) -> None:
        n = self.d.size(name)
        spop = name
        while spop in self.sonata_sizes:
            spop = f"{spop}_"
        tid = self._new_type_id(self.used_node_types, 100)
        g = root.create_group(spop)
        g.create_dataset("node_type_id", data=np.full(n, tid, np.int64))
        g.create_dataset("node_group_id", data=np.zeros(n, np.int64))
        g.create_dataset("node_group_index", data=np.arange(n, dtype=np.uint64))
        grp = g.create_group("0")
        xyz = self._positions(name, n)
        if xyz is not None:
            for axis, key in enumerate("xyz"):
                grp.create_dataset(key, data=xyz[:, axis])
        self.sonata_sizes[spop] = n
        self.maps[name] = NodeMap(spop, None, n)
        row = {"node_type_id": str(tid), "pop_name": name}
        row.update(self._model_columns(name, {}))
        row.update(self._initial_potentials(name, grp))
        self.node_rows[self._stem_of(root)].append(row)

    def _initial_potentials(self, name: str, grp: Any) -> dict[str, str]:
        """A population's v_init: per node as `dynamics_params/V_m` (netbabel's draws: what bmtk sets in NEST),
        and as the `netbabel_v_init` column (the number or distribution, for netbabel's import)."""
        from netbabel.instantiate import initial_potentials

        v_init = self.d.populations[name].v_init
        if v_init is None or self._virtual(name):
            return {}
        values = initial_potentials(self.d, name)
        if values is None:
            v_init = float(self.d.value(v_init))
            values = np.full(self.d.size(name), v_init)
        else:
            v_init = {k: (v if k in ("distribution", "bounds") else float(self.d.value(v)))
                      for k, v in to_dict(v_init).items()}
        grp.create_dataset("dynamics_params/V_m", data=np.asarray(values, dtype=np.float64))
        return {conv.V_INIT_COLUMN: json.dumps(v_init, separators=(",", ":"))}

    def _positions(self, name: str, n: int) -> np.ndarray | None:
        pos = self.d.populations[name].positions
        if pos is None:
            return None
        if pos.type == "file" and pos.file:
            path = self.d.resolve_path(pos.file)
            if path.suffix.lower() in (".h5", ".hdf5"):
                import h5py

                with h5py.File(path, "r") as f:
                    return np.asarray(f["positions"][()], dtype=np.float64)[:n, :3]
            return np.loadtxt(path, delimiter=",", ndmin=2)[:n, :3]
        if pos.type == "grid" and pos.shape:
            axes = [np.arange(k) * (pos.spacing[i] if pos.spacing else 1.0) + (pos.origin[i] if pos.origin else 0.0)
                    for i, k in enumerate(pos.shape)]
            grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(axes))
            return np.pad(grid, ((0, 0), (0, 3 - grid.shape[1])))[:n]
        return None

    @staticmethod
    def _new_type_id(used: set[int], start: int) -> int:
        tid = max([start - 1, *used]) + 1
        used.add(tid)
        return tid

    def _model_columns(self, name: str, original: dict) -> dict[str, str | None]:
        """model_type, model_template, dynamics_params, morphology, model_processing of a population's cell type."""
        pop = self.d.populations[name]
        ct_name = pop.cell_type
        if ct_name in self.cell_files:
            return self.cell_files[ct_name]
        ct = self.d.cell_types[ct_name]
        if ct.model in MODELS and MODELS[ct.model].kind == "neuron":
            fname = f"{ct_name}.json"
            params = {k: v if isinstance(v, bool) else self.d.value(v) for k, v in ct.params.items()}
            _write_json(self.comp / "point_neuron_models" / fname, conv.point_params_out(params))
            mt = original.get("model_type") if original.get("model_type") in conv.POINT_MODEL_TYPES else "point_neuron"
            template = original.get("model_template") or ""
            template = ct.model if template and not template.startswith("nest:") else f"nest:{ct.model}"
            cols = {"model_type": mt, "model_template": template, "dynamics_params": fname,
                    "morphology": None, "model_processing": None}
        elif ct.model == "spike_generator":
            cols = {"model_type": conv.VIRTUAL, "model_template": None, "dynamics_params": None,
                    "morphology": None, "model_processing": None}
        elif ct.model == MULTICOMPARTMENT:
            cols = self._biophysical(ct_name, ct)
        else:
            raise UnsupportedFeature(f"population {name!r}: cell model {ct.model!r} has no SONATA node type "
                                     "(Poisson sources: use Poisson inputs, which netbabel draws as spike trains)",
                                     pointer=f"/cell_types/{ct_name}/model")
        self.cell_files[ct_name] = {k: v for k, v in cols.items()}
        return self.cell_files[ct_name]

    def _biophysical(self, ct_name: str, ct: CellType) -> dict[str, str | None]:
        src = ct.source or {}
        if src.get("format") != "sonata" or not src.get("morphology") or not src.get("dynamics_params"):
            raise UnsupportedFeature(f"cell type {ct_name!r}: multicompartment cells are exported to SONATA only "
                                     "when they came from SONATA (SWC morphology + Allen dynamics params)",
                                     pointer=f"/cell_types/{ct_name}")
        if src.get("sections_sha256") and src["sections_sha256"] != conv.sections_digest(ct):
            raise UnsupportedFeature(f"cell type {ct_name!r}: its sections were edited after the SONATA import; "
                                     "SONATA export of edited multicompartment cells is not supported",
                                     pointer=f"/cell_types/{ct_name}/sections")
        morph_dir = self.comp / "morphologies"
        params_dir = self.comp / "biophysical_neuron_models"
        morph_dir.mkdir(parents=True, exist_ok=True)
        params_dir.mkdir(parents=True, exist_ok=True)
        morph, params = Path(src["morphology"]), Path(src["dynamics_params"])
        shutil.copyfile(morph, morph_dir / morph.name)
        shutil.copyfile(params, params_dir / params.name)
        mod_dir = self.comp / "mechanisms" / "modfiles"  # bmtk BioNet loads (compiled) mechanisms from here
        mod_dir.mkdir(parents=True, exist_ok=True)
        if ct.mod_files:
            for m in ct.mod_files:
                shutil.copyfile(self.d.resolve_path(m), mod_dir / Path(m).name)
        return {"model_type": conv.BIOPHYSICAL, "model_template": src.get("model_template") or "ctdb:Biophys1.hoc",
                "dynamics_params": params.name, "morphology": morph.name,
                "model_processing": src.get("model_processing")}

    # -- edges --------------------------------------------------------------------
    def write_edges(self) -> None:
        import h5py

        plan = self._edge_plan()
        self.used_edge_types.update(int(t) for item in plan if item[0] == "copy" for t in item[4])
        try:
            for item in plan:
                if item[0] == "copy":
                    _, file, epop, types_files, used = item
                    stem = _stem(file, "edges")
                    root = self._root(stem, "edges")
                    with h5py.File(file, "r") as src:
                        src.copy(src["edges"][epop], root, name=epop)
                    rows = {}
                    for tf in types_files:
                        rows.update(_read_csv(Path(tf), "edge_type_id"))
                    present = {int(r["edge_type_id"]) for r in self.edge_rows[stem]}
                    for tid in used:
                        if int(tid) not in present:
                            row = dict(rows.get(int(tid), {"edge_type_id": str(tid)}))
                            self._copy_synapse_file(row.get("dynamics_params"))
                            self.edge_rows[stem].append(row)
            root = self._root("edges", "edges")
            used_names = {n for f in self.files.values() for n in f.get("edges", {})}
            for item in plan:
                if item[0] == "new":
                    index = item[1]
                    name = _unique(_clean(self.d.projection_name(index)), used_names)
                    self._new_edge_population(root.file, name, index)
        finally:
            self._close()

    def _edge_plan(self) -> list[tuple]:
        """Copy whole original edge populations where possible; write the rest as new populations."""
        import h5py

        by_origin: dict[tuple[str, str], list[tuple[int, int]]] = {}
        direct: dict[int, tuple[str, str]] = {}
        for i, p in enumerate(self.d.projections):
            if p.rule.type != "explicit":
                raise UnsupportedFeature(f"projection {self.d.projection_name(i)!r}: rule {p.rule.type!r} is not "
                                         "explicit after instantiation", pointer=f"/projections/{i}/rule")
            path = self.d.resolve_path(p.rule.file)
            epop = p.rule.population or self.d.projection_name(i)
            with h5py.File(path, "r") as f:
                if "edges" not in f or epop not in f["edges"]:
                    raise NetbabelError(f"edge population {epop!r} not found", str(path),
                                        f"/projections/{i}/rule/population")
                g = f["edges"][epop]
                origin_file = g.attrs.get("sonata_file")
                if origin_file is not None and "sonata_edge_id" in g:
                    origin = (_text(origin_file), _text(g.attrs["sonata_population"]))
                    by_origin.setdefault(origin, []).append((i, g["source_node_id"].shape[0]))
                elif str(path.resolve()) in self._original_edge_files():
                    direct[i] = (str(path.resolve()), epop)
        plan: list[tuple] = []
        done: set[int] = set()
        for (file, epop), members in by_origin.items():
            if self._whole_edges(file, epop, [i for i, _ in members], sum(n for _, n in members)):
                plan.append(("copy", file, epop, self._original_edge_files().get(file, []), _type_ids(file, epop)))
                done.update(i for i, _ in members)
        for i, (file, epop) in direct.items():
            if self._whole_edges(file, epop, [i], None):
                plan.append(("copy", file, epop, self._original_edge_files().get(file, []), _type_ids(file, epop)))
                done.add(i)
        plan += [("new", i) for i in range(len(self.d.projections)) if i not in done]
        return plan

    def _copy_synapse_file(self, name: str | None) -> None:
        """The synapse dynamics params file of a copied edge type, from the original components."""
        directory = self.provenance.get("components", {}).get("synaptic_models_dir")
        if not name or not directory:
            return
        src = Path(directory) / name
        if src.is_file():
            dst = self.comp / "synaptic_models" / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)

    def _original_edge_files(self) -> dict[str, list[str]]:
        return {str(Path(h5).resolve()): ts for h5, ts in self.provenance.get("edges", [])}

    def _whole_edges(self, file: str, epop: str, members: list[int], count: int | None) -> bool:
        """The original edge population can be copied: all its edges are here between copied node populations."""
        import h5py

        if not Path(file).is_file():
            return False
        with h5py.File(file, "r") as f:
            if epop not in f.get("edges", {}):
                return False
            g = f["edges"][epop]
            n = g["source_node_id"].shape[0]
            spop = _text(g["source_node_id"].attrs.get("node_population"))
            tpop = _text(g["target_node_id"].attrs.get("node_population"))
        if count is not None and count != n:
            return False
        for i in members:
            p = self.d.projections[i]
            for end, want in ((p.source, spop), (p.target, tpop)):
                m = self.maps[end]
                if want is not None and m.population != want:
                    return False
                if m.ids is not None and not np.array_equal(m.ids, np.arange(m.ids.size)) and count is None:
                    return False
        return True

    def _new_edge_population(self, f: Any, name: str, index: int) -> None:
        import h5py

        p = self.d.projections[index]
        src_map, tgt_map = self.maps[p.source], self.maps[p.target]
        tid = self._new_type_id(self.used_edge_types, 100)
        sign = self._sonata_sign(index)
        path = self.d.resolve_path(p.rule.file)
        epop = p.rule.population or self.d.projection_name(index)
        with h5py.File(path, "r") as src:
            g = src["edges"][epop]
            n = g["source_node_id"].shape[0]
            has_w = "0" in g and "syn_weight" in g["0"]
            has_d = "0" in g and "delay" in g["0"]
            w_default = None if has_w else self.d.value(p.weight)
            d_default = None if has_d else self.d.value(p.delay)
            writer = _edge_writer(f, name, src_map.population, tgt_map.population, src_map.size, tgt_map.size, tid)
            for start in range(0, n, CHUNK):
                sl = slice(start, min(n, start + CHUNK))
                s = np.asarray(g["source_node_id"][sl], np.int64)
                t = np.asarray(g["target_node_id"][sl], np.int64)
                w = np.asarray(g["0"]["syn_weight"][sl], np.float64) if has_w else np.full(s.size, w_default)
                dl = np.asarray(g["0"]["delay"][sl], np.float64) if has_d else np.full(s.size, d_default)
                s = s if src_map.ids is None else src_map.ids[s]
                t = t if tgt_map.ids is None else tgt_map.ids[t]
                writer.append(s, t, sign * w, dl)
            writer.finish()
        self.edge_rows[self._stem_of(f)].append(self._edge_type_row(index, tid))

    def _sonata_sign(self, index: int) -> float:
        """SONATA point-neuron syn_weight follows NEST: inhibitory conductance synapses carry negative weights."""
        p = self.d.projections[index]
        ct = self.d.cell_types[self.d.populations[p.target].cell_type]
        receptor = self.d.synapse_types[p.synapse_type].receptor if p.synapse_type else "excitatory"
        if ct.model in MODELS and MODELS[ct.model].synapse == "conductance" and receptor == "inhibitory":
            return -1.0
        return 1.0

    def _edge_type_row(self, index: int, tid: int) -> dict:
        p = self.d.projections[index]
        syn = self.d.synapse_types.get(p.synapse_type) if p.synapse_type else None
        ct = self.d.cell_types[self.d.populations[p.target].cell_type]
        if ct.model == MULTICOMPARTMENT:
            site = (ct.synapses or {}).get(syn.site) if syn and syn.site else None
            if site is None:
                raise UnsupportedFeature(f"projection {self.d.projection_name(index)!r}: synapses onto a "
                                         "multicompartment cell need a synapse type with a site",
                                         pointer=f"/projections/{index}/synapse_type")
            template, params = conv.synapse_site_out(site)
            lists = ct.section_lists or {}
            section_list = next((conv_key for conv_key, lst in conv.ALLEN_SECTION_LISTS.items()
                                 if site.section in lists.get(lst, [])), "soma")
            extra = {"target_sections": f"['{conv.ALLEN_SECTION_LISTS[section_list]}']",
                     "distance_range": "[0.0,1e20]"}
        else:
            model = syn.model if syn else "static"
            template = conv.NEST_SYNAPSE_OF[model]
            params = dict(syn.params) if syn else {}
            extra = {}
        fname = f"{_clean(self.d.projection_name(index))}.json"
        _write_json(self.comp / "synaptic_models" / fname, params)
        return {"edge_type_id": str(tid), "model_template": template, "dynamics_params": fname, **extra}

    # -- inputs -------------------------------------------------------------------
    def write_spike_inputs(self) -> None:
        """Virtual populations: one SONATA spike file per SONATA population; spike_train inputs: new virtual nodes."""
        by_spop: dict[str, tuple[list, list]] = {}
        for name, pop in self.d.populations.items():
            ct = self.d.cell_types[pop.cell_type]
            if ct.model != "spike_generator":
                continue
            ids, times = self._source_spikes(name, ct)
            m = self.maps[name]
            sonata_ids = ids if m.ids is None else m.ids[ids]
            acc = by_spop.setdefault(m.population, ([], []))
            acc[0].append(sonata_ids)
            acc[1].append(times)
        for spop, (ids, times) in by_spop.items():
            self._spike_file(spop, np.concatenate(ids), np.concatenate(times))
        trains = [i for i, inp in enumerate(self.d.inputs) if inp.type == "spike_train"]
        if not trains:
            return
        try:
            for index in trains:
                self._spike_train_input(self._root("virtual_nodes", "nodes").file,
                                        self._root("edges", "edges").file, index)
        finally:
            self._close()

    def _spike_train_input(self, nf: Any, ef: Any, index: int) -> None:
        import h5py

        inp = self.d.inputs[index]
        name = _unique(_clean(self.d.input_name(index)), set(self.sonata_sizes))
        target = self.maps[inp.target]
        n = self.d.size(inp.target)
        tid = self._new_type_id(self.used_node_types, 100)
        g = nf.require_group("nodes").create_group(name)
        g.create_dataset("node_type_id", data=np.full(n, tid, np.int64))
        g.create_dataset("node_group_id", data=np.zeros(n, np.int64))
        g.create_dataset("node_group_index", data=np.arange(n, dtype=np.uint64))
        g.create_group("0")
        self.sonata_sizes[name] = n
        self.node_rows["virtual_nodes"].append({"node_type_id": str(tid), "model_type": conv.VIRTUAL, "pop_name": name})
        with h5py.File(self.d.resolve_path(inp.file), "r") as f:
            sg = f["spikes"][inp.population or self.d.input_name(index)]
            ids = np.asarray(sg["node_ids"][()], np.int64)
            times = np.asarray(sg["timestamps"][()], np.float64)
        self._spike_file(name, ids, times)
        etid = self._new_type_id(self.used_edge_types, 100)
        writer = _edge_writer(ef, name, name, target.population, n, target.size, etid)
        cell = np.arange(n)
        weight = self.d.value(inp.weight) * self._input_sign(index)
        delay = self.d.value(inp.delay) if inp.delay is not None else self.d.value(self.d.simulation.dt)
        writer.append(cell, cell if target.ids is None else target.ids[cell], np.full(n, weight), np.full(n, delay))
        writer.finish()
        syn = self.d.synapse_types.get(inp.synapse_type) if inp.synapse_type else None
        fname = f"{name}.json"
        _write_json(self.comp / "synaptic_models" / fname, dict(syn.params) if syn else {})
        self.edge_rows["edges"].append({"edge_type_id": str(etid), "model_template": "static_synapse",
                                        "dynamics_params": fname})

    def _input_sign(self, index: int) -> float:
        inp = self.d.inputs[index]
        ct = self.d.cell_types[self.d.populations[inp.target].cell_type]
        receptor = self.d.synapse_types[inp.synapse_type].receptor if inp.synapse_type else "excitatory"
        return -1.0 if ct.model in MODELS and MODELS[ct.model].synapse == "conductance" and receptor == "inhibitory" else 1.0

    def _source_spikes(self, name: str, ct: CellType) -> tuple[np.ndarray, np.ndarray]:
        n = self.d.size(name)
        if ct.params.get("spike_file"):
            from netbabel.spikereport import read_report

            report = read_report(self.d.resolve_path(ct.params["spike_file"]))
            ids, times = report.get(name) or next(iter(report.values()), (np.zeros(0, np.int64), np.zeros(0)))
            return np.asarray(ids, np.int64), np.asarray(times, np.float64)
        trains = ct.params.get("spike_times", [])
        if trains and not isinstance(trains[0], list):
            trains = [trains] * n
        ids = np.concatenate([np.full(len(t), i, np.int64) for i, t in enumerate(trains)]) if trains else np.zeros(0, np.int64)
        times = np.concatenate([np.asarray([self.d.value(x) for x in t], np.float64) for t in trains]) \
            if trains else np.zeros(0)
        return ids, times

    def _spike_file(self, spop: str, ids: np.ndarray, times: np.ndarray) -> None:
        path = self.out / "inputs" / f"{_clean(spop)}_spikes.h5"
        write_report(path, {spop: (ids, times)})
        self.inputs[f"{_clean(spop)}_spikes"] = {"input_type": "spikes", "module": "h5",
                                                 "input_file": f"$INPUT_DIR/{path.name}", "node_set": spop}

    def write_current_inputs(self) -> None:
        for index, inp in enumerate(self.d.inputs):
            if inp.type not in ("dc", "step_current"):
                continue
            mc = self.d.cell_types[self.d.populations[inp.target].cell_type].model == MULTICOMPARTMENT
            node_set = self._node_set_of(inp.target)
            name = _clean(self.d.input_name(index))
            if inp.type == "dc":
                start = self.d.value(inp.start) if inp.start is not None else 0.0
                stop = self.d.value(inp.stop) if inp.stop is not None else self.d.value(self.d.simulation.duration)
                entries = [{"amp": conv.current_clamp_out(self.d.value(inp.amplitude), mc), "delay": start,
                            "duration": min(stop, self.d.value(self.d.simulation.duration) + 1.0) - start}]
            else:
                times = [self.d.value(t) for t in inp.times or []]
                amps = [self.d.value(a) for a in inp.amplitudes or []]
                ends = times[1:] + [self.d.value(self.d.simulation.duration)]
                steps = [(conv.current_clamp_out(a, mc), t, e - t) for a, t, e in zip(amps, times, ends)
                         if a != 0.0 and e > t]
                entries = [{"amp": [a for a, _, _ in part], "delay": [t for _, t, _ in part],
                            "duration": [du for _, _, du in part]} for part in _without_contiguous_pulses(steps)]
                if len(entries) > 1:  # the importer sums the parts back into one step current
                    entries = [{**e, STEP_CURRENT_KEY: name} for e in entries]
            for i, entry in enumerate(entries):
                self.inputs[name if i == 0 else f"{name}_part{i + 1}"] = {
                    "input_type": "current_clamp", "module": "IClamp", "node_set": node_set, **entry}

    def _node_set_of(self, population: str) -> str:
        m = self.maps[population]
        sets = getattr(self, "node_sets", None)
        if sets is None:
            sets = self.node_sets = {}
        if m.ids is None:
            sets[m.population] = {"population": m.population}
            return m.population
        key = _clean(population)
        tids = self.d.populations[population].annotations["sonata"]["node_type_ids"]
        # bmtk 1.2 ignores node_type_id in a node set (the whole population gets the input): node_id too
        sets[key] = {"population": m.population, "node_type_id": list(tids), "node_id": m.ids.tolist()}
        return key

    # -- configs ------------------------------------------------------------------
    def write_configs(self) -> None:
        sim = self.d.simulation
        node_sets = dict(getattr(self, "node_sets", {}))
        for spop in self.sonata_sizes:
            node_sets.setdefault(spop, {"population": spop})
        _write_json(self.out / "node_sets.json", node_sets)
        components = {"point_neuron_models_dir": "$COMPONENTS_DIR/point_neuron_models",
                      "synaptic_models_dir": "$COMPONENTS_DIR/synaptic_models"}
        for key, sub in (("morphologies_dir", "morphologies"), ("biophysical_neuron_models_dir",
                                                                  "biophysical_neuron_models"),
                         ("mechanisms_dir", "mechanisms")):
            if (self.comp / sub).is_dir():
                components[key] = f"$COMPONENTS_DIR/{sub}"
        nodes = [{"nodes_file": f"$NETWORK_DIR/{stem}.h5", "node_types_file": f"$NETWORK_DIR/{_types_name(stem)}.csv"}
                 for stem in self.node_rows if _h5_names(self.net / f"{stem}.h5", "nodes")]
        edges = [{"edges_file": f"$NETWORK_DIR/{stem}.h5", "edge_types_file": f"$NETWORK_DIR/{_types_name(stem)}.csv"}
                 for stem in self.edge_rows if _h5_names(self.net / f"{stem}.h5", "edges")]
        for entry in nodes:  # libsonata lists populations (with their type) from the circuit config
            entry["populations"] = self._population_types(self.out / "network" / Path(entry["nodes_file"]).name)
        for entry in edges:
            entry["populations"] = {name: {"type": "chemical"} for name in
                                    _h5_names(self.out / "network" / Path(entry["edges_file"]).name, "edges")}
        circuit = {"manifest": {"$BASE_DIR": ".", "$NETWORK_DIR": "$BASE_DIR/network",
                                "$COMPONENTS_DIR": "$BASE_DIR/components"},
                   "components": components, "networks": {"nodes": nodes, "edges": edges}}
        run: dict[str, Any] = {"tstart": 0.0, "tstop": self.d.value(sim.duration), "dt": self.d.value(sim.dt),
                               "random_seed": int(sim.seed)}
        cells = [ct for ct in self.d.cell_types.values() if ct.model == MULTICOMPARTMENT]
        if cells and cells[0].spike_detection:
            run["spike_threshold"] = cells[0].spike_detection.threshold
        if cells:
            run["dL"] = conv.DEFAULT_DL
            run["nsteps_block"] = 5000  # bmtk BioNet divides by it
        conditions: dict[str, Any] = {}
        if sim.temperature is not None:
            conditions["celsius"] = self.d.value(sim.temperature)
        if sim.v_init is not None:
            conditions["v_init"] = self.d.value(sim.v_init)
        simulation = {"manifest": {"$BASE_DIR": ".", "$OUTPUT_DIR": "$BASE_DIR/output", "$INPUT_DIR": "$BASE_DIR/inputs"},
                      "target_simulator": "NEURON" if self.has_mc else "NEST",
                      "run": run, "conditions": conditions, "inputs": self.inputs,
                      "output": {"output_dir": "$OUTPUT_DIR", "log_file": "log.txt", "spikes_file": "spikes.h5",
                                 "overwrite_output_dir": True},
                      "network": "$BASE_DIR/circuit_config.json", "node_sets_file": "$BASE_DIR/node_sets.json"}
        _write_json(self.out / "circuit_config.json", circuit)
        _write_json(self.out / "simulation_config.json", simulation)

    def _population_types(self, nodes_file: Path) -> dict[str, dict]:
        import h5py

        rows = {int(r["node_type_id"]): r for r in self.node_rows[nodes_file.stem]}
        out = {}
        with h5py.File(nodes_file, "r") as f:
            for name, g in f["nodes"].items():
                tid = int(g["node_type_id"][0]) if g["node_type_id"].shape[0] else None
                mt = rows.get(tid, {}).get("model_type") or "point_neuron"
                out[name] = {"type": "point_neuron" if mt in conv.POINT_MODEL_TYPES else mt}
        return out

    def _write_csv(self, path: Path, rows: list[dict], id_column: str) -> None:
        columns = [id_column]
        for row in rows:
            columns += [c for c in row if c not in columns]
        with open(path, "w", newline="") as f:
            w = csv.writer(f, delimiter=" ", quotechar='"', quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
            w.writerow(columns)
            for row in sorted(rows, key=lambda r: int(r[id_column])):
                w.writerow(["NULL" if row.get(c) is None else row[c] for c in columns])


def _without_contiguous_pulses(steps: list[tuple[float, float, float]]) -> list[list[tuple[float, float, float]]]:
    """Split (amp, delay, duration) pulses into at most two lists in which no pulse starts where the
    previous one stops: bmtk 1.2 PointNet switches a clamp off at its stop time and on at the next
    delay, and NEST refuses that time twice. Both lists together (clamps add up) are the same current."""
    parts: list[list[tuple[float, float, float]]] = [[], []]
    side = 0
    for i, step in enumerate(steps):
        contiguous = i > 0 and steps[i - 1][1] + steps[i - 1][2] >= step[1]
        side = 1 - side if contiguous else 0
        parts[side].append(step)
    return [p for p in parts if p] or [[]]


def _edge_writer(f: Any, name: str, spop: str, tpop: str, n_source: int, n_target: int, edge_type_id: int) -> Any:
    from netbabel.instantiate.writer import EdgePopulationWriter

    return EdgePopulationWriter(f, name, spop, tpop, n_source, n_target, edge_type_id=edge_type_id)


def _stem(original: str, kind: str) -> str:
    """Output file stem for populations copied from `original` (never the names of the new files)."""
    stem = Path(original).stem
    return stem if stem not in ("nodes", "virtual_nodes", "edges") else f"{stem}_{kind}_copy"


def _types_name(stem: str) -> str:
    for kind, types in (("nodes", "node_types"), ("edges", "edge_types")):
        if stem.endswith(kind):
            return stem[: -len(kind)] + types
    return f"{stem}_types"


def _type_ids(file: str, epop: str) -> list[int]:
    import h5py

    with h5py.File(file, "r") as f:
        return np.unique(np.asarray(f["edges"][epop]["edge_type_id"][()])).tolist()


def _h5_names(path: Path, group: str) -> list[str]:
    if not path.exists():
        return []
    import h5py

    with h5py.File(path, "r") as f:
        return list(f[group].keys()) if group in f else []


def _read_csv(path: Path, id_column: str) -> dict[int, dict]:
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f, delimiter=" ", quotechar='"', skipinitialspace=True) if r]
    header = rows[0]
    out = {}
    for r in rows[1:]:
        row = {h: (None if v in ("NULL", "") else v) for h, v in zip(header, r)}
        out[int(row[id_column])] = row
    return out


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _text(v: Any) -> str | None:
    if v is None:
        return None
    return v.decode() if isinstance(v, bytes) else str(v)


def _clean(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name.replace("->", "_to_"))


def _unique(name: str, used: set[str]) -> str:
    out, k = name, 1
    while out in used:
        k += 1
        out = f"{name}_{k}"
    used.add(out)
    return out
