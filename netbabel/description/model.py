"""The typed object model of a network description (format version 1).

Every class maps one-to-one to a schema object (see schema/*.md). Numeric
fields hold a number or an expression string over `parameters` (type `Value`);
they are evaluated with `Description.value()`. `from_dict(to_dict(x)) == x`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

Value = Union[float, int, str]


@dataclass
class Distribution:
    """A random value: normal (mean, sd), lognormal (mu, sigma), uniform (low, high)."""

    distribution: str
    mean: Value | None = None
    sd: Value | None = None
    mu: Value | None = None
    sigma: Value | None = None
    low: Value | None = None
    high: Value | None = None
    bounds: str | None = None  # "redraw" | "clip" when low/high bound a normal/lognormal


Quantity = Union[float, int, str, Distribution]


@dataclass
class Provenance:
    tool: str
    source: str | None = None
    sha256: str | None = None
    date: str | None = None
    format: str | None = None
    options: dict[str, Any] | None = None


@dataclass
class Metadata:
    title: str | None = None
    description: str | None = None
    authors: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    license: str | None = None
    provenance: list[Provenance] = field(default_factory=list)


@dataclass
class Section:
    """One unbranched cable of a multicompartment cell."""

    name: str
    parent: str | None = None
    parent_x: float = 1.0
    child_x: float = 0.0
    nseg: int = 1
    points: list[list[float]] | None = None  # [[x, y, z, diam], ...] in um
    L: float | None = None
    diam: float | None = None
    Ra: Value | None = None
    cm: Value | None = None
    mechanisms: dict[str, dict[str, Any]] = field(default_factory=dict)
    ions: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class SynapseSite:
    """A synapse point process on a multicompartment cell (ExpSyn / Exp2Syn style)."""

    mechanism: str
    section: str
    x: float = 0.5
    params: dict[str, Value] = field(default_factory=dict)


@dataclass
class SpikeDetection:
    section: str
    x: float = 0.5
    threshold: float = 0.0


@dataclass
class CellType:
    """A point model from the catalogue, a spike source, or a multicompartment cell."""

    model: str
    params: dict[str, Any] = field(default_factory=dict)
    sections: list[Section] | None = None
    section_lists: dict[str, list[str]] | None = None
    mod_files: list[str] | None = None
    spike_detection: SpikeDetection | None = None
    synapses: dict[str, SynapseSite] | None = None
    source: dict[str, Any] | None = None  # where a multicompartment cell came from (hoc template, ...)


@dataclass
class SynapseType:
    model: str = "static"
    receptor: str = "excitatory"
    params: dict[str, Value] = field(default_factory=dict)
    site: str | None = None  # a named synapse of a multicompartment target


@dataclass
class Positions:
    """Cell positions in um: random in a box, on a grid, or from a file."""

    type: str
    low: list[float] | None = None
    high: list[float] | None = None
    shape: list[int] | None = None
    spacing: list[float] | None = None
    origin: list[float] | None = None
    file: str | None = None


@dataclass
class Population:
    cell_type: str
    size: Value
    positions: Positions | None = None
    v_init: Quantity | None = None
    annotations: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rule:
    """A connection rule with NEST's semantics."""

    type: str
    indegree: Value | None = None
    outdegree: Value | None = None
    n: Value | None = None
    p: Value | None = None
    file: str | None = None
    population: str | None = None


@dataclass
class Projection:
    source: str
    target: str
    rule: Rule
    weight: Quantity
    delay: Quantity
    synapse_type: str | None = None
    name: str | None = None
    autapses: bool = True
    multapses: bool = True


@dataclass
class Input:
    """External drive: poisson, dc, step_current or spike_train, onto one population."""

    type: str
    target: str
    name: str | None = None
    rate: Value | None = None
    indegree: Value | None = None
    weight: Quantity | None = None
    delay: Quantity | None = None
    synapse_type: str | None = None
    amplitude: Value | None = None
    amplitudes: list[Value] | None = None
    times: list[Value] | None = None
    start: Value | None = None
    stop: Value | None = None
    section: str | None = None
    x: float | None = None
    file: str | None = None
    population: str | None = None


@dataclass
class VRecording:
    population: str
    ids: list[int]


@dataclass
class Recording:
    spikes: list[str] | str = "all"
    v: list[VRecording] = field(default_factory=list)


@dataclass
class Simulation:
    duration: Value = 1000.0
    dt: Value = 0.1
    seed: int = 12345
    temperature: Value | None = None
    v_init: Value | None = None
    threads: int = 1
    processes: int = 1
    record: Recording = field(default_factory=Recording)


@dataclass
class Description:
    """A whole network model."""

    netbabel: str = field(default="1", metadata={"always": True})
    name: str = field(default="", metadata={"always": True})
    metadata: Metadata = field(default_factory=Metadata)
    parameters: dict[str, Value] = field(default_factory=dict)
    cell_types: dict[str, CellType] = field(default_factory=dict)
    synapse_types: dict[str, SynapseType] = field(default_factory=dict)
    populations: dict[str, Population] = field(default_factory=dict)
    projections: list[Projection] = field(default_factory=list)
    inputs: list[Input] = field(default_factory=list)
    simulation: Simulation = field(default_factory=Simulation)
    base_dir: Path = field(default=Path("."), compare=False, metadata={"serialize": False})

    # -- evaluation helpers -------------------------------------------------
    def value(self, v: Value, **extra: float) -> float:
        """Evaluate a number or an expression over this model's parameters."""
        from netbabel.description.expressions import evaluate_value

        return evaluate_value(v, self.resolved_parameters(), extra)

    def resolved_parameters(self) -> dict[str, float]:
        """All parameters evaluated (cached until the parameters change)."""
        from netbabel.description.expressions import resolve_parameters

        key = repr(sorted(self.parameters.items(), key=lambda kv: kv[0]))
        cache = self.__dict__.get("_param_cache")
        if cache is None or cache[0] != key:
            cache = (key, resolve_parameters(self.parameters))
            self.__dict__["_param_cache"] = cache
        return cache[1]

    def size(self, population: str) -> int:
        """Number of cells of a population."""
        return int(round(self.value(self.populations[population].size)))

    def projection_name(self, index: int) -> str:
        proj = self.projections[index]
        return proj.name or f"{proj.source}->{proj.target}"

    def input_name(self, index: int) -> str:
        inp = self.inputs[index]
        return inp.name or f"{inp.type}->{inp.target}"

    def resolve_path(self, relative: str) -> Path:
        """A path from the description, relative to the description's folder."""
        p = Path(relative)
        return p if p.is_absolute() else self.base_dir / p

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict, base_dir: Path | str = ".") -> "Description":
        d = from_dict(cls, data)
        d.base_dir = Path(base_dir)
        return d


# -- generic (de)serialisation ------------------------------------------------

def to_dict(obj: Any) -> Any:
    """Plain JSON-able data of a model object; fields left at None or at their default are omitted."""
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            if f.metadata.get("serialize", True) is False:
                continue
            v = getattr(obj, f.name)
            if v is None or (_is_default(f, v) and not f.metadata.get("always")):
                continue
            out[f.name] = to_dict(v)
        return out
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def _is_default(f: dataclasses.Field, value: Any) -> bool:
    if f.default is not dataclasses.MISSING:
        return type(value) is type(f.default) and value == f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return value == f.default_factory()  # type: ignore[misc]
    return False


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, globalns=globals())
    return _HINTS[cls]


def from_dict(tp: Any, data: Any) -> Any:
    """Build a model object of type `tp` from validated plain data."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(data, dict):
        hints = _hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in data:
                kwargs[f.name] = from_dict(hints[f.name], data[f.name])
        return tp(**kwargs)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if isinstance(data, dict):
            for a in args:
                if dataclasses.is_dataclass(a):
                    return from_dict(a, data)
            for a in args:
                if typing.get_origin(a) is dict:
                    return from_dict(a, data)
        if isinstance(data, list):
            for a in args:
                if typing.get_origin(a) is list:
                    return from_dict(a, data)
        return data
    if origin is list and isinstance(data, list):
        (item,) = typing.get_args(tp) or (Any,)
        return [from_dict(item, v) for v in data]
    if origin is dict and isinstance(data, dict):
        _, val = typing.get_args(tp) or (Any, Any)
        return {k: from_dict(val, v) for k, v in data.items()}
    return data
