"""instantiate_to_directory: bit-identical results, SONATA files read by libsonata, CLI, disk and interruption."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from netbabel.description import load
from netbabel.errors import NetbabelError
from netbabel.instantiate import instantiate_to_directory, write_edges_file

REPO = Path(__file__).resolve().parents[1]
NETBABEL = [sys.executable, "-m", "netbabel.cli"]

MIXED = {
    "netbabel": "1",
    "name": "mixed",
    "parameters": {"NE": 3000, "NI": 800, "J": 10.0},
    "cell_types": {"lif": {"model": "iaf_psc_exp", "params": {"tau_m": 10.0}}},
    "synapse_types": {"exc": {"receptor": "excitatory"}, "inh": {"receptor": "inhibitory"}},
    "populations": {
        "E": {"cell_type": "lif", "size": "NE", "positions": {"type": "grid", "shape": [60, 50], "spacing": [10.0, 10.0]},
              "v_init": {"distribution": "normal", "mean": -60.0, "sd": 5.0}},
        "I": {"cell_type": "lif", "size": "NI", "positions": {"type": "random", "low": [0, 0, 0], "high": [600, 500, 100]}},
    },
    "projections": [
        {"name": "EE_local", "source": "E", "target": "E", "synapse_type": "exc", "autapses": False,
         "rule": {"type": "pairwise_bernoulli", "p": "0.3 * exp(-d / 30)"}, "weight": "J", "delay": 1.0},
        {"name": "EE_random", "source": "E", "target": "E", "synapse_type": "exc", "autapses": False,
         "rule": {"type": "fixed_indegree", "indegree": 400},
         "weight": {"distribution": "normal", "mean": "J", "sd": 2.0, "low": 0.0, "bounds": "redraw"},
         "delay": {"distribution": "normal", "mean": 1.5, "sd": 0.75, "low": 0.05, "bounds": "redraw"}},
        {"name": "EI", "source": "E", "target": "I", "synapse_type": "exc", "rule": {"type": "fixed_indegree", "indegree": 100},
         "weight": {"distribution": "lognormal", "mu": 2.0, "sigma": 0.3}, "delay": 0.75},
        {"name": "IE", "source": "I", "target": "E", "synapse_type": "inh", "multapses": False,
         "rule": {"type": "fixed_total_number", "n": 300000},
         "weight": {"distribution": "uniform", "low": -60.0, "high": -20.0}, "delay": 0.8},
        {"name": "II", "source": "I", "target": "I", "synapse_type": "inh", "autapses": False,
         "rule": {"type": "fixed_outdegree", "outdegree": 50}, "weight": "-4 * J",
         "delay": {"distribution": "normal", "mean": 1.0, "sd": 1.0, "low": 0.1, "high": 3.0, "bounds": "clip"}},
        {"name": "I_gap", "source": "I", "target": "I", "synapse_type": "inh", "rule": {"type": "one_to_one"},
         "weight": -1.0, "delay": 0.1},
    ],
    "inputs": [
        {"name": "bg_E", "type": "poisson", "target": "E", "rate": 20.0, "indegree": 50, "weight": "J", "delay": 1.5,
         "synapse_type": "exc"},
        {"name": "bg_I", "type": "poisson", "target": "I", "rate": 30.0, "indegree": 40, "weight": "J", "delay": 1.5,
         "synapse_type": "exc", "start": 50.0, "stop": 150.0},
        {"name": "bias", "type": "dc", "target": "I", "amplitude": 20.0},
    ],
    "simulation": {"duration": 200.0, "dt": 0.1, "seed": 2024},
}


@pytest.fixture(scope="module")
def mixed_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "mixed.json"
    path.write_text(json.dumps(MIXED))
    return path


@pytest.fixture(scope="module")
def reference_dir(mixed_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "explicit"
    instantiate_to_directory(load(mixed_file), out, chunk_size=1000, progress=False)
    return out


def datasets(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def assert_same_directory(a: Path, b: Path) -> None:
    assert (a / "model.json").read_text() == (b / "model.json").read_text()
    for name in ("nodes.h5", "edges.h5", "inputs.h5"):
        da, db = datasets(a / name), datasets(b / name)
        assert sorted(da) == sorted(db)
        for key in da:
            assert da[key].dtype == db[key].dtype, key
            assert np.array_equal(da[key], db[key]), f"{name}:{key} differs"


@pytest.mark.parametrize("chunk_size, processes", [(10_000, 1), (1_000_000, 1), (None, 2)])
def test_bit_identical_for_any_chunk_size_and_process_count(mixed_file, reference_dir, tmp_path, chunk_size, processes):
    out = tmp_path / "explicit"
    instantiate_to_directory(load(mixed_file), out, chunk_size=chunk_size, processes=processes, progress=False)
    assert_same_directory(reference_dir, out)


@pytest.mark.parametrize("chunk_size", [1_000, 10_000])
def test_helper_threads_give_the_same_bits(mixed_file, reference_dir, tmp_path, monkeypatch, chunk_size):
    import netbabel.instantiate.directory as directory

    # the model is small: the reference ran in the writing thread; force the helper threads (drawing, indices)
    monkeypatch.setattr(directory, "THREADED_ITEMS", 0)
    out = tmp_path / "explicit"
    instantiate_to_directory(load(mixed_file), out, chunk_size=chunk_size, progress=False)
    assert_same_directory(reference_dir, out)


@pytest.mark.parametrize("sizes", [(0, 0), (1, 5), (1000, 65536), (65536, 65536), (7, 123457)])
def test_adler32_combine_equals_zlib(sizes):
    """edge_group_index's chunks carry the Adler-32 of their data, combined from cached planes."""
    import zlib

    from netbabel.instantiate.writer import adler32_combine

    rng = np.random.default_rng(sum(sizes))
    a, b = (rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in sizes)
    assert adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(a + b)


def test_the_compiled_loops_are_built():
    from netbabel.instantiate import kernels

    assert kernels.AVAILABLE, "netbabel/instantiate/_kernels.c was not compiled (pip install -e . needs a C compiler)"


def test_the_compiled_index_refuses_node_ids_beyond_its_arrays():
    """A node id past the counts or the free slots raises instead of writing out of bounds."""
    from netbabel.instantiate import kernels

    keys = np.array([1, 1, 3, 70], np.uint16)
    with pytest.raises(ValueError, match="not below"):
        kernels.count_runs(keys, np.zeros(64, np.int64))
    counts = np.zeros(71, np.int64)
    assert kernels.count_runs(keys, counts) == 3
    free, ranges, scratch = kernels.node_slots(counts[:64]), np.zeros((3, 2), np.uint32), np.zeros(4, np.uint64)
    with pytest.raises(ValueError, match="beyond"):
        kernels.place_runs(keys, 0, 4, free, ranges, scratch)
    with pytest.raises(TypeError):
        kernels.place_runs(keys.astype(np.int64), 0, 4, kernels.node_slots(counts), ranges, scratch)


@pytest.mark.parametrize("processes", [1, 2])
def test_numpy_alone_gives_the_same_bits(mixed_file, reference_dir, tmp_path, monkeypatch, processes):
    """Without the compiled loops (normal weights, delays, source indices: kernels.py), numpy gives
    exactly the same files."""
    from netbabel.instantiate import kernels

    monkeypatch.setattr(kernels, "AVAILABLE", False)
    out = tmp_path / "explicit"
    instantiate_to_directory(load(mixed_file), out, chunk_size=1_000, processes=processes, progress=False)
    assert_same_directory(reference_dir, out)


def test_worker_results_too_large_for_a_shared_memory_slot_are_pickled(mixed_file, reference_dir, tmp_path,
                                                                        monkeypatch):
    import netbabel.instantiate.directory as directory

    monkeypatch.setattr(directory, "SLOT_BYTES", 1 << 20)  # the big tasks do not fit, the small ones do
    out = tmp_path / "explicit"
    instantiate_to_directory(load(mixed_file), out, processes=2, progress=False)
    assert_same_directory(reference_dir, out)


def test_explicit_description_is_valid_and_complete(reference_dir):
    d = load(reference_dir / "model.json")
    assert all(p.rule.type == "explicit" and p.rule.file == "edges.h5" for p in d.projections)
    assert [p.rule.population for p in d.projections] == [p["name"] for p in MIXED["projections"]]
    kinds = [(i.name, i.type, i.file, i.population, i.weight, i.delay) for i in d.inputs]
    assert kinds == [("bg_E", "spike_train", "inputs.h5", "bg_E", "J", 1.5),
                     ("bg_I", "spike_train", "inputs.h5", "bg_I", "J", 1.5),
                     ("bias", "dc", None, None, None, None)]
    assert d.metadata.provenance[-1].tool.endswith("instantiate")
    result = subprocess.run(NETBABEL + ["validate", str(reference_dir / "model.json")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not list(reference_dir.parent.glob(".*partial*"))


def test_libsonata_reads_every_file(reference_dir, mixed_file):
    import libsonata

    d = load(mixed_file)
    nodes = libsonata.NodeStorage(str(reference_dir / "nodes.h5"))
    assert nodes.population_names == {"E", "I"}
    for pop in ("E", "I"):
        np_ = nodes.open_population(pop)
        assert np_.size == d.size(pop)
        assert {"x", "y", "z"} <= np_.attribute_names
    e_x = nodes.open_population("E").get_attribute("x", libsonata.Selection([[0, 3000]]))
    assert e_x[50] == 10.0  # grid in C order: index 50 is (1, 0)

    storage = libsonata.EdgeStorage(str(reference_dir / "edges.h5"))
    assert storage.population_names == {p["name"] for p in MIXED["projections"]}
    raw = datasets(reference_dir / "edges.h5")
    rng = np.random.default_rng(0)
    for i, proj in enumerate(MIXED["projections"]):
        pop = storage.open_population(proj["name"])
        assert (pop.source, pop.target) == (proj["source"], proj["target"])
        everything = pop.select_all()
        src, tgt = pop.source_nodes(everything), pop.target_nodes(everything)
        prefix = f"edges/{proj['name']}/"
        assert np.array_equal(src, raw[prefix + "source_node_id"])
        assert np.array_equal(pop.get_attribute("syn_weight", everything), raw[prefix + "0/syn_weight"])
        assert np.array_equal(pop.get_attribute("delay", everything), raw[prefix + "0/delay"])
        assert np.all(raw[prefix + "edge_type_id"] == i) and np.all(raw[prefix + "edge_group_id"] == 0)
        assert np.array_equal(raw[prefix + "edge_group_index"], np.arange(src.size))
        for node in rng.integers(0, d.size(proj["target"]), 5):
            assert np.array_equal(pop.afferent_edges([int(node)]).flatten(), np.flatnonzero(tgt == node))
        for node in rng.integers(0, d.size(proj["source"]), 5):
            assert np.array_equal(np.sort(pop.efferent_edges([int(node)]).flatten()), np.flatnonzero(src == node))

    spikes = libsonata.SpikeReader(str(reference_dir / "inputs.h5"))
    assert set(spikes.get_population_names()) == {"bg_E", "bg_I"}
    bg_i = np.array(spikes["bg_I"].get())
    assert bg_i[:, 1].min() >= 50.2 and bg_i[:, 1].max() <= 150.1
    assert spikes["bg_I"].sorting == "by_id"


def test_indices_equal_the_ones_libsonata_writes(reference_dir, tmp_path):
    import libsonata

    copy = tmp_path / "edges.h5"
    shutil.copy(reference_dir / "edges.h5", copy)
    sizes = {"E": 3000, "I": 800}
    with h5py.File(copy, "a") as f:
        for proj in MIXED["projections"]:
            del f[f"edges/{proj['name']}/indices"]
    for proj in MIXED["projections"]:
        libsonata.EdgePopulation.write_indices(str(copy), proj["name"], sizes[proj["source"]], sizes[proj["target"]])
    ours, theirs = datasets(reference_dir / "edges.h5"), datasets(copy)
    keys = [k for k in ours if "/indices/" in k]
    assert len(keys) == 4 * len(MIXED["projections"])
    for key in keys:
        assert np.array_equal(ours[key], theirs[key]), key


def test_write_edges_file_matches_the_directory(mixed_file, reference_dir, tmp_path):
    d = load(mixed_file)
    path = write_edges_file(tmp_path / "some.h5", d, projections=[1, 4])
    ours, direct = datasets(reference_dir / "edges.h5"), datasets(path)
    assert {k.split("/")[1] for k in direct} == {"EE_random", "II"}
    for key, value in direct.items():
        assert np.array_equal(value, ours[key]), key


def test_cli_instantiate_and_reinstantiate_an_explicit_model(tmp_path):
    out = tmp_path / "tiny_explicit"
    result = subprocess.run(NETBABEL + ["instantiate", str(REPO / "tests/data/tiny.json"), "-o", str(out),
                                        "--chunk-size", "3", "--processes", "2"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["edges.h5", "inputs.h5", "model.json", "nodes.h5"]
    again = tmp_path / "again"
    result = subprocess.run(NETBABEL + ["instantiate", str(out / "model.json"), "-o", str(again)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    a, b = datasets(out / "edges.h5"), datasets(again / "edges.h5")
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    sa, sb = datasets(out / "inputs.h5"), datasets(again / "inputs.h5")
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)


def test_not_enough_disk_space_is_refused_before_writing(mixed_file, tmp_path, monkeypatch):
    import netbabel.instantiate.directory as directory

    monkeypatch.setattr(directory, "free_bytes", lambda path: 10_000_000)
    out = tmp_path / "explicit"
    with pytest.raises(NetbabelError, match="not enough disk space: the explicit model needs about .* MB, only 10.0 MB"):
        instantiate_to_directory(load(mixed_file), out, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_disk_full_while_writing_leaves_nothing(mixed_file, tmp_path):
    """A file size limit (RLIMIT_FSIZE) makes writes fail midway, as a full disk does."""
    out = tmp_path / "explicit"
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))\n"
        "from netbabel.cli import main\n"
        f"sys.exit(main(['instantiate', {str(mixed_file)!r}, '-o', {str(out)!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "error:" in result.stderr and "cannot write the explicit model" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_run_leaves_nothing_that_looks_complete(tmp_path, sig):
    out = tmp_path / "explicit"
    big = json.loads(json.dumps(MIXED))  # ~10x the edges: the run must outlast the signal's delivery
    big["projections"][1]["rule"]["indegree"] = 4000
    model = tmp_path.parent / f"{tmp_path.name}-big.json"
    model.write_text(json.dumps(big))
    # as from a shell: SIGINT at its default (a simulator imported earlier in this worker may ignore it,
    # and an ignored SIGINT is inherited)
    proc = subprocess.Popen(NETBABEL + ["instantiate", str(model), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".explicit.partial-*/edges.h5")):
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert not out.exists()
    leftovers = list(tmp_path.iterdir())
    if sig == signal.SIGINT:
        assert leftovers == []
    else:  # a killed process cannot clean up, but its partial directory is hidden and has no model.json
        assert all(p.name.startswith(".explicit.partial-") and not (p / "model.json").exists() for p in leftovers)


def test_output_replaces_an_existing_directory_atomically(tmp_path):
    out = tmp_path / "explicit"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    instantiate_to_directory(load(REPO / "tests/data/tiny.json"), out, progress=False)
    assert not (out / "stale.txt").exists() and (out / "model.json").exists()
    assert os.stat(out).st_mode & 0o777 != 0o700


def _libsonata_indices(path: Path, sizes: dict[str, tuple[int, int]], tmp_path: Path) -> dict[str, np.ndarray]:
    import libsonata

    copy = tmp_path / "libsonata_indices.h5"
    shutil.copy(path, copy)
    with h5py.File(copy, "a") as f:
        for name in sizes:
            del f[f"edges/{name}/indices"]
    for name, (ns, nt) in sizes.items():
        libsonata.EdgePopulation.write_indices(str(copy), name, ns, nt)
    return {k: v for k, v in datasets(copy).items() if "/indices/" in k}


@pytest.mark.parametrize("sort_edges, memory_edges", [(10**9, 10**9), (1000, 10**9), (1000, 1000)],
                         ids=["sorted-at-once", "bands-in-memory", "bands-read-from-file"])
def test_indices_in_many_bands_equal_libsonata(tmp_path, monkeypatch, sort_edges, memory_edges):
    """Bounded-memory index building (one sort, bands of node ids over the ids in memory or read back)."""
    import netbabel.instantiate.writer as writer

    monkeypatch.setattr(writer, "BAND_EDGES", 5000)
    monkeypatch.setattr(writer, "BAND_NODES", 64)
    monkeypatch.setattr(writer, "READ_CHUNK", 3000)
    monkeypatch.setattr(writer, "SORT_EDGES", sort_edges)
    monkeypatch.setattr(writer, "MEMORY_EDGES", memory_edges)
    d = load(REPO / "tests/data/tiny.json", overrides=["parameters.N=500", "parameters.K=40"])
    path = write_edges_file(tmp_path / "e.h5", d)
    ours = {k: v for k, v in datasets(path).items() if "/indices/" in k}
    theirs = _libsonata_indices(path, {"A_to_B": (500, 5), "B_to_A": (5, 500)}, tmp_path)
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        assert np.array_equal(ours[key], theirs[key]), key


@pytest.mark.parametrize("compiled, n_source", [(True, 300), (True, 70000), (False, 300)],
                         ids=["compiled-uint16", "compiled-uint32", "numpy"])
def test_source_index_equals_libsonata(tmp_path, monkeypatch, compiled, n_source):
    """The source index built by the compiled counting passes (kernels.py) or by numpy's sort, with runs of
    one source (merged ranges) inside a target and across a target boundary, equals libsonata's."""
    import netbabel.instantiate.writer as writer
    from netbabel.instantiate import kernels
    from netbabel.instantiate.writer import EdgePopulationWriter

    monkeypatch.setattr(kernels, "AVAILABLE", compiled)
    monkeypatch.setattr(writer, "INDEX_PIECE", 1000)  # pieces of the compiled passes; a run crosses one
    rng = np.random.default_rng(5)
    ns, nt, n_blocks = n_source, 40, 6
    counts = rng.integers(0, 900, nt)
    targets = np.repeat(np.arange(nt), counts)
    sources = rng.integers(0, ns, targets.size)
    sources[100:110] = 7  # consecutive edges of one source: merged ranges
    sources[995:1005] = 11
    boundary = int(np.cumsum(counts)[3])
    sources[boundary - 2:boundary + 2] = ns - 1  # a run across two targets
    cuts = np.linspace(0, targets.size, n_blocks + 1).astype(int)
    path = tmp_path / "e.h5"
    with h5py.File(path, "w", **writer.FILE_ALIGNMENT) as f:
        w = EdgePopulationWriter(f, "p", "S", "T", ns, nt, exact_size=targets.size)
        for a, b in zip(cuts[:-1], cuts[1:]):
            w.append(sources[a:b], targets[a:b], np.ones(b - a), np.ones(b - a))
        w.finish()
    ours = {k: v for k, v in datasets(path).items() if "/indices/" in k}
    theirs = _libsonata_indices(path, {"p": (ns, nt)}, tmp_path)
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        assert np.array_equal(ours[key], theirs[key]), key


def test_explicit_projection_from_an_unsorted_file_is_copied_with_indices(tmp_path):
    rng = np.random.default_rng(3)
    n = 5000
    src, tgt = rng.integers(0, 20, n), rng.integers(0, 5, n)
    with h5py.File(tmp_path / "given.h5", "w") as f:
        g = f.create_group("edges/mine")
        g.create_dataset("source_node_id", data=src.astype(np.uint64))
        g.create_dataset("target_node_id", data=tgt.astype(np.uint64))
        g.create_dataset("0/syn_weight", data=np.linspace(1, 2, n))
    data = json.loads((REPO / "tests/data/tiny.json").read_text())
    data["projections"][0]["rule"] = {"type": "explicit", "file": "given.h5", "population": "mine"}
    (tmp_path / "m.json").write_text(json.dumps(data))
    out = tmp_path / "explicit"
    instantiate_to_directory(load(tmp_path / "m.json"), out, progress=False)
    got = datasets(out / "edges.h5")
    assert np.array_equal(got["edges/A_to_B/source_node_id"], src)
    assert np.array_equal(got["edges/A_to_B/target_node_id"], tgt)
    assert np.array_equal(got["edges/A_to_B/0/syn_weight"], np.linspace(1, 2, n))
    assert np.all(got["edges/A_to_B/0/delay"] == 1.0), "the projection's delay where the file has none"
    theirs = _libsonata_indices(out / "edges.h5", {"A_to_B": (20, 5), "B_to_A": (5, 20)}, tmp_path)
    for key, value in theirs.items():
        assert np.array_equal(got[key], value), key


def test_iter_edges_reads_the_explicit_model_back(reference_dir, mixed_file):
    from netbabel.instantiate import iter_edges

    explicit, original = load(reference_dir / "model.json"), load(mixed_file)
    for i in (1, 4):
        a = list(iter_edges(original, i))
        b = list(iter_edges(explicit, i))
        for key in ("sources", "targets", "weights", "delays"):
            assert np.array_equal(np.concatenate([getattr(x, key) for x in a]),
                                  np.concatenate([getattr(x, key) for x in b])), key


def test_files_the_model_refers_to_are_copied_beside_model_json(tmp_path):
    src_dir = tmp_path / "src"
    (src_dir / "data").mkdir(parents=True)
    xyz = np.arange(60, dtype=float).reshape(20, 3)
    np.savetxt(src_dir / "data/pos.csv", xyz, delimiter=",")
    data = json.loads((REPO / "tests/data/tiny.json").read_text())
    data["populations"]["A"]["positions"] = {"type": "file", "file": "data/pos.csv"}
    data["projections"][1]["rule"] = {"type": "pairwise_bernoulli", "p": "exp(-d / 30)"}
    data["populations"]["B"]["positions"] = {"type": "grid", "shape": [5], "spacing": [20.0]}
    (src_dir / "m.json").write_text(json.dumps(data))
    out = tmp_path / "explicit"
    explicit = instantiate_to_directory(load(src_dir / "m.json"), out, progress=False)
    assert (out / "data/pos.csv").read_text() == (src_dir / "data/pos.csv").read_text()
    assert explicit.base_dir == out
    import libsonata

    pop = libsonata.NodeStorage(str(out / "nodes.h5")).open_population("A")
    assert np.array_equal(pop.get_attribute("y", pop.select_all()), xyz[:, 1])
    shutil.rmtree(src_dir)
    assert subprocess.run(NETBABEL + ["validate", str(out / "model.json")], capture_output=True).returncode == 0


def _instantiate_in_pool_worker(out: str) -> int:
    d = load(REPO / "tests/data/tiny.json")
    return len(instantiate_to_directory(d, out, processes=2, progress=False).projections)


def test_works_inside_a_daemonic_pool_worker(tmp_path):
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(_instantiate_in_pool_worker, (str(tmp_path / "explicit"),)) == 2
    assert (tmp_path / "explicit/model.json").exists()
