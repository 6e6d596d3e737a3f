"""`netbabel simulate` options applied to a description before any backend sees it.

`apply_simulation_options(description, args)` returns a modified copy:
--duration, --dt, --seed, --threads, --processes set `simulation`;
--current-step AMP_nA,START_ms,STOP_ms [--population P] adds a `dc` input
(amplitude converted from nA to the description's pA) to P, or to every neuron
population; --record-v P:IDS (repeatable) adds membrane potential recordings.
"""

from __future__ import annotations

import argparse
import copy

from netbabel.converters.units import convert
from netbabel.description.catalogue import MODELS, MULTICOMPARTMENT
from netbabel.description.model import Description, Input, VRecording
from netbabel.errors import NetbabelError


def apply_simulation_options(description: Description, args: argparse.Namespace) -> Description:
    """A copy of `description` with the command-line simulation options applied."""
    d = copy.deepcopy(description)
    sim = d.simulation
    for name in ("duration", "dt"):
        value = getattr(args, name, None)
        if value is not None:
            if value <= 0:
                raise NetbabelError(f"--{name} must be positive, not {value}")
            setattr(sim, name, float(value))
    if getattr(args, "seed", None) is not None:
        sim.seed = int(args.seed)
    if getattr(args, "threads", None) is not None:
        if args.threads < 1:
            raise NetbabelError(f"--threads must be at least 1, not {args.threads}")
        sim.threads = int(args.threads)
    processes = getattr(args, "processes", None)
    if processes is not None and processes != 1:
        if processes < 1:
            raise NetbabelError(f"--processes must be at least 1, not {processes}")
        sim.processes = int(processes)
    step = getattr(args, "current_step", None)
    if step:
        for target in _step_targets(d, getattr(args, "population", None)):
            d.inputs.append(_current_step(step, target))
    elif getattr(args, "population", None):
        raise NetbabelError("--population only applies to --current-step")
    for text in getattr(args, "record_v", None) or []:
        _add_v_recording(d, text)
    return d


def parse_current_step(text: str) -> tuple[float, float, float]:
    """`AMP_nA,START_ms,STOP_ms` -> (amplitude in pA, start in ms, stop in ms)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        amp_na, start, stop = (float(p) for p in parts)
    except ValueError:
        raise NetbabelError(f"--current-step {text!r}: expected AMP_nA,START_ms,STOP_ms (three numbers)") from None
    if not 0 <= start < stop:
        raise NetbabelError(f"--current-step {text!r}: need 0 <= START < STOP")
    return convert(amp_na, "nA", "pA"), start, stop


def _current_step(text: str, target: str) -> Input:
    amplitude_pa, start, stop = parse_current_step(text)
    return Input(type="dc", target=target, name=f"current_step->{target}",
                 amplitude=amplitude_pa, start=start, stop=stop)


def _step_targets(d: Description, population: str | None) -> list[str]:
    if population:
        _check_population(d, population, "--population")
        if _is_source(d, population):
            raise NetbabelError(f"--population {population}: a spike source cannot receive a current")
        return [population]
    targets = [p for p in d.populations if not _is_source(d, p)]
    if not targets:
        raise NetbabelError("--current-step: the model has no neuron population")
    return targets


def _is_source(d: Description, population: str) -> bool:
    model = d.cell_types[d.populations[population].cell_type].model
    return model != MULTICOMPARTMENT and MODELS[model].kind == "source"


def _check_population(d: Description, population: str, flag: str) -> None:
    if population not in d.populations:
        raise NetbabelError(f"{flag} {population}: no such population (known: {', '.join(d.populations)})")


def _add_v_recording(d: Description, text: str) -> None:
    population, sep, ids_text = text.partition(":")
    if not sep or not ids_text.strip():
        raise NetbabelError(f"--record-v {text!r}: expected POPULATION:IDS, e.g. E:0,1,2")
    _check_population(d, population, "--record-v")
    if _is_source(d, population):
        raise NetbabelError(f"--record-v {population}: a spike source has no membrane potential")
    try:
        ids = _parse_ids(ids_text)
    except ValueError:
        raise NetbabelError(f"--record-v {text!r}: IDS must be integers or ranges such as 0,1,5-9") from None
    size = d.size(population)
    bad = [i for i in ids if not 0 <= i < size]
    if bad:
        raise NetbabelError(f"--record-v {population}: ids {bad} outside 0..{size - 1}")
    for rec in d.simulation.record.v:
        if rec.population == population:
            rec.ids = sorted(set(rec.ids) | set(ids))
            return
    d.simulation.record.v.append(VRecording(population=population, ids=sorted(set(ids))))


def _parse_ids(text: str) -> list[int]:
    ids: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            low, high = part.split("-", 1)
            ids.update(range(int(low), int(high) + 1))
        elif part:
            ids.add(int(part))
    return sorted(ids)
