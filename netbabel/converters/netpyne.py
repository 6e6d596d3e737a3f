"""Description -> NetPyNE 1.1 / NEURON 9: mechanism names, parameters, delays, current inputs.

Point neurons become netbabel's own NMODL artificial cells (netbabel/nmodl), which
step exactly like NEST 3.10's models; their parameters keep NEST's names and units
(mV, ms, pA, pF, nS), so values pass through unchanged. What is translated here:

- the mechanism name of each catalogue model (`MECHANISMS`);
- timing: delays are rounded to the dt grid like NEST (half up, at least one step);
  a netbabel cell emits the spike of grid time T at T + SPIKE_OFFSET * dt (see the .mod
  files), so connections *from* such cells get `delay - SPIKE_OFFSET * dt` and the
  spike still arrives at T + delay; recorded times are rounded back down to the grid;
- injected currents (dc, step_current) onto point cells become events that change the
  cell's current by a step (NetCon weight index 1), at the times the NEST export's
  dc_generator / step_current_generator change the current of the neuron: from `start`
  (each `times[i]`) on, as NEURON's IClamp; the event leaves one step before the change
  with delay dt (`device_event_time`; a dc from 0 starts at dt, a step below 2 dt at 2 dt,
  as in NEST);
- multicompartment cells: weights (uS) and DC amplitudes (pA -> nA for IClamp).
"""

from __future__ import annotations

import math
from typing import Any

from netbabel.converters.units import convert
from netbabel.description.catalogue import MODELS, MULTICOMPARTMENT
from netbabel.description.model import Description, Distribution
from netbabel.errors import UnsupportedFeature
from netbabel.nmodl import MECHANISMS

# catalogue model -> NMODL ARTIFICIAL_CELL of netbabel/nmodl: netbabel.nmodl.MECHANISMS
SPIKE_OFFSET = 0.49  # in units of dt: emission time of a spike after its grid time
# current changes reach the cell one step after their event (delay dt, as the NEST export's generators);
# a hair more than dt because NEURON's MPI spike exchange refuses a minimum NetCon delay of exactly dt
# (events are delivered within dt/2 of their time, so the step is the same)
DEVICE_DELAY_STEPS = 1.001
LARGE = 1e308  # NMODL stand-in for an infinite bound


def cell_model(d: Description, population: str) -> str:
    return d.cell_types[d.populations[population].cell_type].model


def population_kind(d: Description, population: str) -> str:
    """`neuron` (netbabel NMODL cell), `multicompartment`, `poisson` or `spikes` (sources)."""
    model = cell_model(d, population)
    if model == MULTICOMPARTMENT:
        return "multicompartment"
    if model == "poisson_generator":
        return "poisson"
    if model == "spike_generator":
        return "spikes"
    return "neuron"


def mechanism(d: Description, population: str) -> str:
    """The NMODL mechanism of a point-neuron population; UnsupportedFeature when there is none yet."""
    model = cell_model(d, population)
    if model not in MECHANISMS:
        raise UnsupportedFeature(
            f"population {population!r}: {model} has no NEURON implementation in netbabel yet "
            f"(available: {', '.join(MECHANISMS)})", pointer=f"/populations/{population}/cell_type")
    return MECHANISMS[model]


def neuron_parameters(d: Description, population: str) -> dict[str, float]:
    """The catalogue parameters of a point neuron (defaults filled in) as the NMODL cell's values."""
    ct = d.cell_types[d.populations[population].cell_type]
    spec = MODELS[ct.model]
    params: dict[str, float] = {}
    for name, p in spec.params.items():
        value = ct.params.get(name, p.default)
        if isinstance(value, bool):
            value = 1.0 if value else 0.0
        elif not isinstance(value, (int, float)):
            value = d.value(value)
        params[name] = _finite(float(value))
    for name in ct.params:
        if name not in spec.params:
            raise UnsupportedFeature(f"cell type {d.populations[population].cell_type!r}: unknown parameter "
                                     f"{name!r} of {ct.model}")
    v = d.populations[population].v_init
    if v is not None and not isinstance(v, Distribution):
        params["V_m"] = float(d.value(v))
    return params


def _finite(x: float) -> float:
    if math.isinf(x):
        return math.copysign(LARGE, x)
    return x


def steps_per_ms(dt: float) -> float:
    return 1.0 / dt


def grid_delay(delay: float, dt: float) -> float:
    """A delay rounded half up to the dt grid, at least one step (NEST's and instantiate's rule)."""
    steps = max(1.0, math.floor(delay / dt + 0.5))
    return steps * dt


def netcon_delay(delay: float, dt: float, from_netbabel_cell: bool) -> float:
    """NetCon delay giving arrival at t_spike + grid_delay(delay) (see SPIKE_OFFSET)."""
    d = grid_delay(delay, dt)
    return round(d - SPIKE_OFFSET * dt, 12) if from_netbabel_cell else round(d, 12)


def weight_factor(d: Description, target: str, synapse_type: str | None, weight: float | None, what: str) -> float:
    """The factor netbabel's weights get in NetPyNE: -1 for inhibitory conductance synapses, else 1.

    Current and delta synapses carry signed weights (a sign contradicting the receptor is
    refused); conductance weights are positive and the NMODL cell reads a negative weight
    as inhibitory (as NEST does).
    """
    receptor = None
    if synapse_type is not None:
        st = d.synapse_types[synapse_type]
        if st.model != "static":
            raise UnsupportedFeature(f"{what}: synapse model {st.model!r} is not exported to NetPyNE yet "
                                     "(only static synapses)")
        receptor = st.receptor
    if population_kind(d, target) != "neuron":
        return 1.0
    if receptor is not None and receptor not in ("excitatory", "inhibitory"):
        raise UnsupportedFeature(f"{what}: receptor {receptor!r} does not exist on a point neuron")
    if MODELS[cell_model(d, target)].synapse == "conductance":
        if weight is not None and weight < 0:
            raise UnsupportedFeature(f"{what}: conductance weights are positive (got {weight}); "
                                     "name the receptor in the synapse type")
        return -1.0 if receptor == "inhibitory" else 1.0
    if weight is not None and ((receptor == "inhibitory" and weight > 0) or (receptor == "excitatory" and weight < 0)):
        raise UnsupportedFeature(f"{what}: weight {weight} has the wrong sign for receptor {receptor!r}")
    return 1.0


def current_changes(d: Description, index: int) -> list[tuple[float, float]]:
    """(time, change of current in pA) of a dc or step_current input, as NEST's generators apply them.

    The returned time is when the current in the cell should change (the description's
    time); for point cells see `device_event_time`.
    """
    inp = d.inputs[index]
    if inp.type == "dc":
        amp = float(d.value(inp.amplitude))
        start = float(d.value(inp.start)) if inp.start is not None else 0.0
        stop = float(d.value(inp.stop)) if inp.stop is not None else math.inf
        changes = [(start, amp)]
        if math.isfinite(stop):
            changes.append((stop, -amp))
        return changes
    if inp.type == "step_current":
        times = [float(d.value(t)) for t in inp.times or []]
        amps = [float(d.value(a)) for a in inp.amplitudes or []]
        if len(times) != len(amps):
            raise UnsupportedFeature(f"input {d.input_name(index)!r}: {len(times)} times for {len(amps)} amplitudes")
        changes, last = [], 0.0
        for t, a in zip(times, amps):
            changes.append((t, a - last))
            last = a
        return changes
    raise ValueError(inp.type)


def device_event_time(t: float, dt: float) -> float:
    """When the event changing a point cell's current leaves (NetCon delay dt), so that the
    current changes at t, as NEST's generators in the NEST export do: a dc or step_current
    time below 2 dt takes effect at 2 dt (NEST's generators emit nothing in the first step)."""
    return round(max(round(t / dt) * dt - dt, dt), 10)


def iclamp_nA(amplitude_pA: float) -> float:
    """An IClamp amplitude (nA) from netbabel's pA."""
    return convert(amplitude_pA, "pA", "nA")


def poisson_params(rate_hz: float, start: float | None, stop: float | None) -> dict[str, Any]:
    """A NetStim population's parameters for Poisson trains of `rate_hz` (NetPyNE converts rate)."""
    params: dict[str, Any] = {"rate": float(rate_hz), "noise": 1.0, "start": float(start or 0.0)}
    if stop is not None and math.isfinite(stop):
        params["number"] = 1e9
    return params
