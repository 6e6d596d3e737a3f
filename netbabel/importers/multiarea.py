"""The macaque multi-area model (Schmidt et al. 2018, INM-6 multi-area-model) as a Description.

Input: a clone of https://github.com/INM-6/multi-area-model in which the model was
instantiated once (so that `config_files/custom_Data_Model_<label>.json` exists), or a
folder holding the three files that define the connectome:

- `custom_Data_Model_<label>.json` (or `.json.gz`): neuron numbers, synapse numbers
  (with the external input), inter-area distances, weight means and sds;
- `K_prime_original.npy` (upstream `figures/SchueckerSchmidt2017/`): the stabilised
  cortical in-degrees that the default parameters load (`--k-stable none` uses the
  data-derived in-degrees instead);
- `fullscale_rates.json` (upstream `tests/`): full-scale rates for the rate-preserving
  down-scaling (and, with `--replace-areas het_poisson_stat`, the replacement rates).

The numbers follow the upstream `MultiAreaModel` and `simulation.py` (NEST 3 branch)
exactly: float neuron and synapse numbers, `int()` of them for what NEST creates,
`fixed_total_number` connections, normal weights redrawn into [0, inf) (E sources and
every cortico-cortical projection) or (-inf, 0] (intra-area I sources), normal delays
(sd = mean / 2) redrawn above dt, one Poisson generator per neuron (NEST default
delay 1 ms), and when down-scaled: weights / sqrt(K_scaling) (the weight sd is left
unscaled, an upstream quirk kept on purpose) plus a DC input. netbabel never bundles
these files (CC BY-NC-SA 4.0); it reads them from the user's disk.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from netbabel.converters.scaling import check_factors, compensating_current, scale_weights
from netbabel.description.model import (
    CellType, Description, Distribution, Input, Metadata, Population, Projection, Provenance, Rule,
    Simulation, SynapseType,
)
from netbabel.errors import NetbabelError

FORMAT = "multiarea"
DATA_GLOB = "custom_Data_Model_*.json*"
K_STABLE_PATHS = ("figures/SchueckerSchmidt2017/K_prime_original.npy", "K_prime_original.npy")
RATES_PATHS = ("tests/fullscale_rates.json", "fullscale_rates.json")
REPLACEMENTS = ("hom_poisson_stat", "het_poisson_stat")

#: upstream default_params.py (commit 355d940): neuron, delay and input parameters
NEURON_PARAMS = {"E_L": -65.0, "V_th": -50.0, "V_reset": -65.0, "C_m": 250.0, "tau_m": 10.0,
                 "tau_syn_ex": 0.5, "tau_syn_in": 0.5, "t_ref": 2.0}
V0_MEAN, V0_SD = -150.0, 50.0
DELAY_E, DELAY_I, DELAY_REL, INTERAREA_SPEED = 1.5, 0.75, 0.5, 3.5  # ms, ms, 1, mm/ms
RATE_EXT = 10.0  # Hz per external synapse
EXT_DELAY = 1.0  # ms: the upstream connects the Poisson generators with NEST's default delay
DT = 0.1  # ms: upstream sim_params['dt'], also the lower bound of the delays
RNG_SEED = 1  # upstream sim_params['rng_seed']
LAYERS = {"23": "L23", "4": "L4", "5": "L5", "6": "L6"}

REFERENCES = [
    "Schmidt M, Bakker R, Hilgetag CC, Diesmann M, van Albada SJ (2018) Multi-scale account of the network "
    "structure of macaque visual cortex. Brain Struct Funct 223:1409-1435. doi:10.1007/s00429-017-1554-4",
    "Schmidt M, Bakker R, Shen K, Bezgin G, Diesmann M, van Albada SJ (2018) A multi-scale layer-resolved "
    "spiking network model of resting-state dynamics in macaque visual cortical areas. PLOS Comput Biol "
    "14:e1006359. doi:10.1371/journal.pcbi.1006359",
    "van Albada SJ, Helias M, Diesmann M (2015) Scalability of asynchronous networks is limited by "
    "one-to-one mapping between effective connectivity and correlations. PLOS Comput Biol 11:e1004490.",
    "https://github.com/INM-6/multi-area-model",
]


# -- locating the input files ------------------------------------------------------------

@dataclass
class Sources:
    """The upstream files an import reads."""

    data: Path
    k_stable: Path | None
    rates: Path | None


def _data_files(folder: Path) -> list[Path]:
    found = []
    for where in (folder, folder / "config_files"):
        if where.is_dir():
            found += sorted(p for p in where.glob(DATA_GLOB) if p.suffix in (".json", ".gz"))
    return found


def detect(path: Path) -> bool:
    """A custom_Data_Model file, or a folder (or upstream clone) holding one."""
    path = Path(path)
    if path.is_file():
        return path.name.startswith("custom_Data_Model_") and path.name.endswith((".json", ".json.gz"))
    return path.is_dir() and bool(_data_files(path))


def locate(path: str | Path, k_stable: str | None = None, rates: str | None = None) -> Sources:
    """The data file, K_stable matrix and full-scale rates of `path` (a clone, a folder or the data file).

    `k_stable`: a .npy file, "none" (data-derived in-degrees) or None (the upstream default file).
    `rates`: a JSON file, or None (the upstream tests/fullscale_rates.json if present).
    """
    path = Path(path)
    if path.is_file():
        data = path
        roots = [path.parent, path.parent.parent]
    else:
        files = _data_files(path)
        if not files:
            raise NetbabelError("no custom_Data_Model_<label>.json here: instantiate the upstream "
                                "MultiAreaModel once (it writes config_files/) or give the three files "
                                "(see reference_models/multiarea/README.md)", str(path))
        if len(files) > 1:
            raise NetbabelError("several custom_Data_Model files: name one of them as the input "
                                f"({', '.join(p.name for p in files)})", str(path))
        data = files[0]
        roots = [path, data.parent]

    def find(candidates: tuple[str, ...]) -> Path | None:
        for root in roots:
            for rel in candidates:
                if (root / rel).is_file():
                    return root / rel
        return None

    if k_stable is not None and k_stable.lower() == "none":
        k_file = None
    elif k_stable is not None:
        k_file = Path(k_stable)
        if not k_file.is_file():
            raise NetbabelError("K_stable file not found", str(k_file))
    else:
        k_file = find(K_STABLE_PATHS)
        if k_file is None:
            raise NetbabelError("the default parameters load the stabilised in-degrees "
                                "figures/SchueckerSchmidt2017/K_prime_original.npy, not found beside the data: "
                                "give --k-stable FILE, or --k-stable none for the data-derived in-degrees", str(path))
    if rates is not None:
        r_file: Path | None = Path(rates)
        if not r_file.is_file():
            raise NetbabelError("rates file not found", str(r_file))
    else:
        r_file = find(RATES_PATHS)
    return Sources(data, k_file, r_file)


def population_name(area: str, pop: str) -> str:
    """`V1_23E`; areas named by a number (7a, 46) get the prefix `area` (`area7a_23E`) as
    netbabel names start with a letter."""
    return f"{area}_{pop}" if area[:1].isalpha() else f"area{area}_{pop}"


def _read_json(path: Path) -> Any:
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        return json.loads(raw)
    except (OSError, EOFError, ValueError) as exc:
        raise NetbabelError(f"cannot read: {exc}", str(path)) from None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the connectome as arrays ---------------------------------------------------------------

@dataclass
class Connectome:
    """The model's numbers as the upstream MultiAreaModel holds them (after scaling).

    Populations follow `area_list` x `structure` (254 at full size); matrices are target x source.
    N, K, synapses are floats as upstream (NEST creates int() of N and synapses).
    """

    areas: list[str]
    structure: dict[str, list[str]]
    N: np.ndarray
    K: np.ndarray
    K_ext: np.ndarray
    synapses: np.ndarray
    W: np.ndarray
    W_sd: np.ndarray
    W_ext: np.ndarray
    delay: np.ndarray
    distances: np.ndarray  # area x area, mm
    DC: np.ndarray
    n_scaling: float = 1.0
    k_scaling: float = 1.0
    cc_weights_factor: float = 1.9
    cc_weights_I_factor: float = 2.0
    rates: dict[str, dict[str, float]] | None = None
    sources: Sources | None = None

    @property
    def keys(self) -> list[tuple[str, str]]:
        return [(a, p) for a in self.areas for p in self.structure[a]]

    @property
    def names(self) -> list[str]:
        return [population_name(a, p) for a, p in self.keys]

    @property
    def area_index(self) -> np.ndarray:
        return np.array([self.areas.index(a) for a, _ in self.keys])

    @property
    def excitatory(self) -> np.ndarray:
        return np.array(["E" in p for _, p in self.keys])


def load_connectome(path: str | Path | Sources, n_scaling: float = 1.0, k_scaling: float = 1.0,
                    k_stable: str | None = None, rates: str | None = None,
                    cc_weights_factor: float | None = None, cc_weights_I_factor: float | None = None) -> Connectome:
    """The upstream numbers (N, K, synapses, W, W_sd, delays, DC) for the given parameters."""
    check_factors(n_scaling, k_scaling)
    sources = path if isinstance(path, Sources) else locate(path, k_stable, rates)
    dat = _read_json(sources.data)
    name = str(sources.data)
    try:
        areas = list(dat["area_list"])
        structure = {a: list(dat["structure"][a]) for a in areas}
        keys = [(a, p) for a in areas for p in structure[a]]
        N = np.array([float(dat["neuron_numbers"][a][p]) for a, p in keys])
        syn_file = np.array([[float(dat["synapses"][a][p][b][q]) for b, q in keys] for a, p in keys])
        syn_ext_file = np.array([float(dat["synapses"][a][p]["external"]["external"]) for a, p in keys])
        W = np.array([[float(dat["synapse_weights_mean"][a][p][b][q]) for b, q in keys] for a, p in keys])
        W_sd = np.array([[float(dat["synapse_weights_sd"][a][p][b][q]) for b, q in keys] for a, p in keys])
        W_ext = np.array([float(dat["synapse_weights_mean"][a][p]["external"]["external"]) for a, p in keys])
        distances = np.array([[float(dat["distances"][a][b]) if a != b else 0.0 for b in areas] for a in areas])
    except (KeyError, TypeError, ValueError) as exc:
        raise NetbabelError(f"not an upstream custom_Data_Model file: missing or bad entry {exc}", name) from None
    if np.any(N <= 0):
        raise NetbabelError("a population of the structure has no neurons", name)

    K_ext = syn_ext_file / N
    if sources.k_stable is None:
        K = syn_file / N[:, None]
        synapses = syn_file
    else:
        try:
            K = np.array(np.load(sources.k_stable, allow_pickle=False), dtype=float)
        except (OSError, ValueError) as exc:
            raise NetbabelError(f"cannot read the K_stable matrix: {exc}", str(sources.k_stable)) from None
        if K.shape != (len(keys), len(keys)):
            raise NetbabelError(f"K_stable has shape {K.shape}, the data file has {len(keys)} populations",
                                str(sources.k_stable))
        K = _zero_tiny(K)  # upstream matrix_to_dict: np.isclose(0, x) -> 0
        synapses = K * N[:, None]

    area_of = np.array([areas.index(a) for a, _ in keys])
    intra = area_of[:, None] == area_of[None, :]
    exc = np.array(["E" in p for _, p in keys])
    factor_file, factor_i_file = _cc_factors(W, intra, exc)
    if not (factor_file > 0 and factor_i_file > 0):
        raise NetbabelError("the data file's cortico-cortical weights are zero: cannot rescale them", name)
    cc_f = factor_file if cc_weights_factor is None else float(cc_weights_factor)
    cc_i = factor_i_file if cc_weights_I_factor is None else float(cc_weights_I_factor)
    rescale = np.where(~intra, cc_f / factor_file, 1.0) * np.where(~intra & ~exc[:, None], cc_i / factor_i_file, 1.0)
    W, W_sd = W * rescale, W_sd * rescale

    delay = np.where(intra, np.where(exc[None, :], DELAY_E, DELAY_I),
                     distances[area_of[:, None], area_of[None, :]] / INTERAREA_SPEED)
    rate_table = _read_json(sources.rates) if sources.rates is not None else None
    DC = np.zeros(len(keys))
    if n_scaling != 1.0 or k_scaling != 1.0:
        if rate_table is None:
            raise NetbabelError("down-scaling needs the full-scale rates (upstream tests/fullscale_rates.json): "
                                "give --rates FILE", str(sources.data))
        nu = _rate_vector(rate_table, keys, str(sources.rates))
        kernel = NEURON_PARAMS["tau_syn_ex"]  # upstream converts every weight with tau_syn_ex
        DC = compensating_current(np.column_stack([K, K_ext]), np.column_stack([W, W_ext]), kernel,
                                  np.append(nu, RATE_EXT), k_scaling)
        N = N * n_scaling
        W, W_ext = scale_weights(W, k_scaling), scale_weights(W_ext, k_scaling)
        K, K_ext = K * k_scaling, K_ext * k_scaling  # upstream K_matrix (its dict form zeroes |K| < 1e-8)
        synapses = _zero_tiny(synapses * (k_scaling * n_scaling))
    return Connectome(areas=areas, structure=structure, N=N, K=K, K_ext=K_ext, synapses=synapses, W=W,
                      W_sd=W_sd, W_ext=W_ext, delay=delay, distances=distances, DC=DC, n_scaling=n_scaling,
                      k_scaling=k_scaling, cc_weights_factor=cc_f, cc_weights_I_factor=cc_i,
                      rates=rate_table, sources=sources)


def _zero_tiny(m: np.ndarray) -> np.ndarray:
    return np.where(np.isclose(0.0, m), 0.0, m)


def _cc_factors(W: np.ndarray, intra: np.ndarray, exc: np.ndarray) -> tuple[float, float]:
    """The cc weight factors the data file was made with (cc E->E over intra E->E; cc ->I over cc ->E)."""
    ee = exc[:, None] & exc[None, :]
    base = np.median(W[intra & ee])  # 87.8 pA: every intra E->E but 4E->23E
    cc_e = np.median(W[~intra & ee])
    cc_i = np.median(W[~intra & (~exc[:, None]) & exc[None, :]])
    return float(cc_e / base), float(cc_i / cc_e)


def _rate_vector(table: Any, keys: list[tuple[str, str]], name: str) -> np.ndarray:
    try:
        return np.array([float(table[a][p]) for a, p in keys])
    except (KeyError, TypeError, ValueError) as exc:
        raise NetbabelError(f"rates file needs a rate for every area and population: missing {exc} "
                            "(format: {\"V1\": {\"23E\": 0.39, ...}, ...})", name) from None


# -- the Description ---------------------------------------------------------------------

def build_description(con: Connectome, areas: list[str] | None = None,
                      replace: str = "hom_poisson_stat", replacement_rates: Any = None) -> Description:
    """The description of the simulated `areas` (all by default); the others become Poisson sources."""
    simulated = list(areas) if areas else list(con.areas)
    unknown = [a for a in simulated if a not in con.areas]
    if unknown:
        raise NetbabelError(f"unknown area(s) {', '.join(unknown)} (areas: {', '.join(con.areas)})")
    if len(set(simulated)) != len(simulated):
        raise NetbabelError("an area is listed twice in --areas")
    if replace not in REPLACEMENTS:
        raise NetbabelError(f"--replace-areas must be one of {', '.join(REPLACEMENTS)}, got {replace!r}")
    keys, names = con.keys, con.names
    rows = {a: [i for i, (b, _) in enumerate(keys) if b == a] for a in con.areas}
    n_created = np.floor(con.N).astype(np.int64)
    for a in simulated:
        for i in rows[a]:
            if n_created[i] < 1:
                raise NetbabelError(f"population {names[i]} has {con.N[i]:.3g} neurons at N_scaling "
                                    f"{con.n_scaling}: no neuron left (use a larger scaling)")

    d = Description(name="multiarea_model")
    d.metadata = _metadata(con, simulated, replace)
    d.cell_types = {"mam_iaf_psc_exp": CellType(model="iaf_psc_exp", params=dict(NEURON_PARAMS))}
    d.synapse_types = {"excitatory": SynapseType(receptor="excitatory"),
                       "inhibitory": SynapseType(receptor="inhibitory")}
    d.simulation = Simulation(duration=1000.0, dt=DT, seed=RNG_SEED)
    v_init = Distribution("normal", mean=V0_MEAN, sd=V0_SD)
    for a in simulated:
        for i in rows[a]:
            pop = keys[i][1]
            d.populations[names[i]] = Population(
                cell_type="mam_iaf_psc_exp", size=int(n_created[i]), v_init=v_init,
                annotations={"area": a, "layer": LAYERS[pop[:-1]], "cell_class": pop[-1], "upstream": f"{a}-{pop}",
                             "N_float": float(con.N[i]), "K_ext": float(con.K_ext[i])})
    skipped = 0
    for a in simulated:  # upstream order: each area's intra connections, then the cortico-cortical ones
        skipped += _projections(d, con, rows[a], rows[a], True)
    for a in simulated:
        for b in con.areas:
            if b != a and b in simulated:
                skipped += _projections(d, con, rows[a], rows[b], False)
    for a in simulated:
        for i in rows[a]:
            d.inputs.append(Input(type="poisson", target=names[i], name=f"ext_{names[i]}",
                                  rate=RATE_EXT * float(con.K_ext[i]), indegree=1, weight=float(con.W_ext[i]),
                                  delay=EXT_DELAY, synapse_type="excitatory"))
            if con.DC[i] != 0.0:
                d.inputs.append(Input(type="dc", target=names[i], name=f"dc_scaling_{names[i]}",
                                      amplitude=float(con.DC[i])))
    replaced = [b for b in con.areas if b not in simulated]
    if replaced:
        table = _replacement_table(con, replace, replacement_rates)
        for a in simulated:
            for b in replaced:
                _replacement_inputs(d, con, a, b, rows, table)
    d.metadata.provenance[-1].options["projections_with_no_synapse_created"] = skipped
    return d


def _projections(d: Description, con: Connectome, targets: list[int], sources: list[int], intra: bool) -> int:
    """fixed_total_number projections (int(synapses)) with the upstream weight and delay rules."""
    names, exc = con.names, con.excitatory
    skipped = 0
    for t in targets:
        for s in sources:
            syn = con.synapses[t, s]
            if syn <= 0.0:
                continue
            n = int(syn)
            if n == 0:
                skipped += 1
                continue
            mean, sd = float(con.W[t, s]), float(con.W_sd[t, s])
            if intra and not exc[s]:
                weight = Distribution("normal", mean=mean, sd=sd, high=0.0, bounds="redraw")
            else:
                if mean < 0:
                    raise NetbabelError(f"cortico-cortical projection {names[s]}->{names[t]} has a negative mean "
                                        "weight: the upstream redraw into [0, inf) would never end")
                weight = Distribution("normal", mean=mean, sd=sd, low=0.0, bounds="redraw")
            delay_mean = float(con.delay[t, s])
            delay = Distribution("normal", mean=delay_mean, sd=delay_mean * DELAY_REL, low=DT, bounds="redraw")
            d.projections.append(Projection(
                source=names[s], target=names[t], rule=Rule("fixed_total_number", n=n), weight=weight,
                delay=delay, synapse_type="excitatory" if exc[s] else "inhibitory"))
    return skipped


def _replacement_table(con: Connectome, replace: str, rates: Any) -> dict[str, dict[str, float]]:
    if replace == "hom_poisson_stat":
        return {a: {p: RATE_EXT for p in con.structure[a]} for a in con.areas}
    table = rates if rates is not None else con.rates
    if table is None:
        raise NetbabelError("--replace-areas het_poisson_stat needs population rates: give --rates FILE")
    _rate_vector(table, con.keys, "rates")  # every population present
    return table


def _replacement_inputs(d: Description, con: Connectome, target_area: str, source_area: str,
                        rows: dict[str, list[int]], table: dict) -> None:
    """One Poisson generator per target and source population (upstream create_additional_input)."""
    names = con.names
    delay = float(con.distances[con.areas.index(target_area), con.areas.index(source_area)] / INTERAREA_SPEED)
    for t in rows[target_area]:
        for s in rows[source_area]:
            indegree = con.synapses[t, s] / con.N[t]
            rate = indegree * float(table[source_area][con.keys[s][1]])
            if rate <= 0.0:
                continue
            d.inputs.append(Input(type="poisson", target=names[t], name=f"replaced_{names[s]}_to_{names[t]}",
                                  rate=float(rate), indegree=1, weight=float(con.W[t, s]), delay=delay,
                                  synapse_type="excitatory" if con.W[t, s] >= 0 else "inhibitory"))


def _metadata(con: Connectome, simulated: list[str], replace: str) -> Metadata:
    src = con.sources
    options = {"N_scaling": con.n_scaling, "K_scaling": con.k_scaling, "areas": simulated,
               "replace_non_simulated_areas": replace if len(simulated) < len(con.areas) else None,
               "cc_weights_factor": con.cc_weights_factor, "cc_weights_I_factor": con.cc_weights_I_factor,
               "K_stable": str(src.k_stable) if src and src.k_stable else None,
               "fullscale_rates": str(src.rates) if src and src.rates else None,
               "rounding": "population sizes and synapse numbers are int() of the upstream floats, "
                           "as the upstream NEST code creates them; the floats are in the annotations N_float"}
    provenance = Provenance(tool="netbabel.importers.multiarea", format="INM-6 multi-area-model connectome",
                            source=str(src.data) if src else None,
                            sha256=_sha256(src.data) if src else None, options=options)
    return Metadata(
        title="Multi-area model of macaque visual cortex (Schmidt et al. 2018)",
        description=("32 areas, 254 populations of iaf_psc_exp neurons, converted from the INM-6 multi-area-model "
                     f"connectome at N_scaling={con.n_scaling}, K_scaling={con.k_scaling}; simulated areas: "
                     f"{', '.join(simulated)}."),
        authors=["Maximilian Schmidt", "Rembrandt Bakker", "Claus C. Hilgetag", "Markus Diesmann",
                 "Sacha J. van Albada"],
        references=list(REFERENCES), license="CC-BY-NC-SA-4.0", provenance=[provenance])


# -- the importer protocol -------------------------------------------------------------------

def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--n-scaling", type=float, default=1.0, metavar="S",
                       help="multiarea: scale neuron numbers by S (default 1)")
    group.add_argument("--k-scaling", type=float, default=1.0, metavar="S",
                       help="multiarea: scale in-degrees by S; weights / sqrt(S) and a DC keep the rates")
    group.add_argument("--areas", metavar="A,B,...", help="multiarea: simulate only these areas (default all)")
    group.add_argument("--replace-areas", choices=REPLACEMENTS, default="hom_poisson_stat",
                       help="multiarea: Poisson sources replacing the other areas (rate_ext, or rates from --rates)")
    group.add_argument("--rates", metavar="FILE",
                       help="multiarea: full-scale population rates JSON (default: tests/fullscale_rates.json)")
    group.add_argument("--k-stable", metavar="FILE|none",
                       help="multiarea: stabilised in-degree matrix (default: K_prime_original.npy; none: data)")
    group.add_argument("--cc-weights-factor", type=float, metavar="F",
                       help="multiarea: cortico-cortical weight factor (default: that of the data file, 1.9)")
    group.add_argument("--cc-weights-i-factor", type=float, metavar="F",
                       help="multiarea: extra factor of cortico-cortical weights onto I (default: data file, 2.0)")


def read(source: str, options: argparse.Namespace) -> Description:
    """`netbabel convert multiarea:PATH` (options from add_arguments; absent ones take the defaults)."""
    get = lambda key, default=None: getattr(options, key, default)  # noqa: E731
    areas_text = get("areas")
    areas = [a.strip() for a in areas_text.split(",") if a.strip()] if areas_text else None
    con = load_connectome(source, n_scaling=get("n_scaling", 1.0) or 1.0, k_scaling=get("k_scaling", 1.0) or 1.0,
                          k_stable=get("k_stable"), rates=get("rates"),
                          cc_weights_factor=get("cc_weights_factor"), cc_weights_I_factor=get("cc_weights_i_factor"))
    description = build_description(con, areas, get("replace_areas") or "hom_poisson_stat")
    description.base_dir = Path(".")
    return description
