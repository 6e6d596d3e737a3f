"""The `neuroml-pylems` engine's subprocess: PyLEMS 0.6.9 with netbabel's fixes, recording spikes itself.

PyLEMS needs the fixes of `patch_pylems` to run NeuroML2 networks (input paths, connection weights and
delays, several events per step, per-cell spike callbacks, `H()`), applied in this subprocess only, and
writes no event files: `pylems_main` records the spike ports itself, on the dt grid as jLEMS does.
Run by `netbabel.backends.neuroml.run_pylems`.
"""

from __future__ import annotations

import argparse

from netbabel.errors import NetbabelError


def pylems_main(lems_name: str, core_dir: str) -> None:
    """Run a LEMS file in PyLEMS (patched) and write its EventOutputFiles (ID_TIME, seconds) itself.

    PyLEMS parses but never writes `EventOutputFile`s; here every selected cell's spike port gets a
    callback that notes the time of the step in which it fired (as jLEMS does).
    """
    import xml.etree.ElementTree as ET

    patch_pylems()
    from lems.run import main
    from lems.sim.build import SimulationBuilder

    outputs: dict[str, list[tuple[int, str, str]]] = {}
    for element in ET.parse(lems_name).getroot().iter("EventOutputFile"):
        outputs[element.get("fileName")] = [(int(sel.get("id")), sel.get("select"), sel.get("eventPort", "spike"))
                                            for sel in element.iter("EventSelection")]
    events: dict[str, list[tuple[int, float]]] = {name: [] for name in outputs}
    build = SimulationBuilder.build

    def build_recording(self):
        sim = build(self)
        network = next(iter(sim.runnables.values()))
        for name, selections in outputs.items():
            for cell_id, select, port in selections:
                cell = network.resolve_path(select)
                cell.register_event_out_callback(port, _spike_recorder(events[name], cell_id, cell))
        return sim

    SimulationBuilder.build = build_recording
    main(argparse.Namespace(lems_file=lems_name, I=[core_dir], dlems=False, nogui=True))
    for name, rows in events.items():
        with open(name, "w") as handle:
            handle.writelines(f"{cell_id}\t{t!r}\n" for cell_id, t in rows)


def _spike_recorder(rows: list, cell_id: int, cell):
    return lambda: rows.append((cell_id, round(cell.time_completed, 12)))


# -- PyLEMS compatibility (applied in the PyLEMS subprocess only) ------------------------------------

_PENDING: list = []  # heap of (due time in s, sequence number, target runnable, port): delayed events
_CLOCK = {"t": 0.0, "seq": 0}


def patch_pylems() -> None:
    """Make PyLEMS 0.6 run NeuroML2 point-neuron networks as jLEMS does (monkeypatches, this process only).

    PyLEMS 0.6.9 and what is done about it:
    (a) it resolves every EventConnection path on the parent first, where NeuroML2's
        `spikeTarget="./syn"` (timedSynapticInput, poissonFiringSynapse) fails ("Unable to find child
        '.'"): such paths are resolved on the component itself, './x' meaning its child x;
    (b) it ignores an EventConnection's `delay` and `<Assign property="weight">` (connectionWD, inputW:
        every event arrived at once with weight 1): both are read from the LEMS file and applied, delayed
        events are delivered in the step after spike time + delay (as in jLEMS); its event handlers read
        the state from the start of the step, so of several events in one step only one counted
        (`I = I + weight` twice added weight once): each handled event now updates the state it assigns;
    (c) it attaches an input to a cell only by type (PyNN cells attach `baseSynapse`s, so pulseGenerators
        and timedSynapticInputs were refused): an input goes into the container named by its destination;
    (d) generated code calls `heaviside_step` (LEMS's H(), in the Poisson inputs), never defined: defined;
    (e) a population's cells are copies sharing their template's lists of event callbacks, so a
        connection from one cell fired on the spikes of all: copies get their own lists;
    (f) a connectionWD made two connections, its own and the weightless, undelayed one of `connection`,
        which it extends: a type's EventConnection replaces the one of the type it extends.
    """
    _patch_pylems_structure()
    _patch_pylems_connections()
    _patch_pylems_events()


def _patch_pylems_structure() -> None:
    """(a) './x' paths, (c) attachment by destination, (e) own callback lists for copies, (d) H()."""
    from lems.sim import runnable as runnable_module
    from lems.sim.runnable import Runnable

    resolve_path = Runnable.resolve_path

    def resolve_path_dot(self, path: str):
        if path == ".":
            return self
        if path.startswith("./"):
            try:
                return resolve_path_dot(self, path[2:])
            except Exception:
                # PyLEMS's Runnable.copy resolves on the parent first and then again on the copy itself
                return self
        return resolve_path(self, path)

    add_attachment = Runnable.add_attachment

    def add_attachment_by_container(self, runnable, container=None) -> None:
        if container and not any(t in self.attachments for t in runnable.component.types) \
                and container in self.attachments.values():
            runnable.id = runnable.id + str(len(self.__dict__[container]))
            self.__dict__[container].append(runnable)
            runnable.parent = self
            return
        add_attachment(self, runnable, container)

    copy = Runnable.copy

    def copy_with_own_callbacks(self):
        saved = self.event_out_callbacks
        self.event_out_callbacks = _CopyingDict(saved)  # Runnable.copy shares the callback lists
        try:
            return copy(self)
        finally:
            self.event_out_callbacks = saved

    runnable_module.heaviside_step = _heaviside
    Runnable.resolve_path = resolve_path_dot
    Runnable.add_attachment = add_attachment_by_container
    Runnable.copy = copy_with_own_callbacks


def _patch_pylems_connections() -> None:
    """(b) delays and weight assignments of EventConnections read and applied, (f) most derived only."""
    from lems.model.model import Model
    from lems.parser.LEMS import LEMSFileParser
    from lems.sim.build import SimulationBuilder

    parse_ec = LEMSFileParser.parse_event_connection

    def parse_event_connection(self, node) -> None:
        parse_ec(self, node)
        ec = self.current_structure.event_connections[-1]
        ec.netbabel_delay = node.lattrib.get("delay")
        ec.netbabel_assigns = [(c.lattrib.get("property"), c.lattrib.get("value"))
                               for c in node.children if c.ltag == "assign"]

    resolve_structure = Model.resolve_structure

    def resolve(self, fc, ct) -> None:
        before = len(fc.structure.event_connections)
        resolve_structure(self, fc, ct)
        for template, ec in zip(ct.structure.event_connections, fc.structure.event_connections[before:]):
            ec.netbabel_delay = _pylems_number(fc, getattr(template, "netbabel_delay", None))
            ec.netbabel_assigns = [(prop, _pylems_number(fc, value))
                                   for prop, value in getattr(template, "netbabel_assigns", [])]

    def build_event_connections(self, component, runnable, structure) -> None:
        for ec in _most_derived(structure.event_connections):
            if ec.receiver:
                source = runnable.parent.resolve_path(ec.from_)
                target = runnable.parent.resolve_path(ec.to)
                # built afresh, not copied: Runnable.copy leaves the copied children's events (the
                # spikes of a timedSynapticInput) wired to the original
                receiver = self.build_runnable(ec.receiver, target)
                template_id = receiver.id
                receiver.id = f"{component.id}__{template_id}__"
                if ec.receiver_container:
                    target.add_attachment(receiver, ec.receiver_container)
                target.add_child(template_id, receiver)
                for prop, value in getattr(ec, "netbabel_assigns", []):
                    if prop and value is not None:
                        receiver.__dict__[prop] = value
                target = receiver
            else:
                source = runnable.resolve_path(ec.from_)
                target = runnable.resolve_path(ec.to)
            source_port = ec.source_port or _only_port(source.event_out_ports, source.id, "source")
            target_port = ec.target_port or _only_port(target.event_in_ports, target.id, "destination")
            source.register_event_out_callback(source_port,
                                               _event_callback(target, target_port, getattr(ec, "netbabel_delay", None)))

    LEMSFileParser.parse_event_connection = parse_event_connection
    Model.resolve_structure = resolve
    SimulationBuilder.build_event_connections = build_event_connections


def _patch_pylems_events() -> None:
    """(b) one state update per handled event; delayed events delivered at the start of their step."""
    import heapq

    from lems.sim.build import SimulationBuilder
    from lems.sim.sim import Simulation

    build_on_event = SimulationBuilder.build_on_event

    def build_on_event_each(self, runnable, regime, on_event) -> list[str]:
        code = build_on_event(self, runnable, regime, on_event)
        assigned = [a.variable for a in on_event.actions if hasattr(a, "variable") and hasattr(a, "expression_tree")]
        return code[:-1] + [f"    self.{v}_shadow = self.{v}" for v in assigned] + code[-1:]

    step = Simulation.step

    def step_delivering(self) -> bool:
        if self.run_queue:
            now, top = self.run_queue[0]
            _CLOCK["t"] = now
            # jLEMS hands a spike sent at step t with delay d to the target in the step after t + d
            while _PENDING and _PENDING[0][0] + 0.5 * top.time_step <= now:
                _, _, target, port = heapq.heappop(_PENDING)
                target.inc_event_in(port)
        return step(self)

    SimulationBuilder.build_on_event = build_on_event_each
    Simulation.step = step_delivering


def _most_derived(connections: list) -> list:
    """One EventConnection per (from, to, receiver): a type's own one replaces the one it extends.

    PyLEMS keeps both (connectionWD's, with delay and weight, and that of `connection`, which it extends).
    """
    chosen: dict = {}
    for ec in connections:
        key = (ec.from_, ec.to, id(ec.receiver) if ec.receiver else None)
        richer = getattr(ec, "netbabel_delay", None) is not None or getattr(ec, "netbabel_assigns", None)
        if key not in chosen or richer:
            chosen[key] = ec
    return list(chosen.values())


class _CopyingDict(dict):
    """A dict whose items are handed out as copies (lists copied, not shared)."""

    def __getitem__(self, key):
        return list(super().__getitem__(key))


def _heaviside(x: float) -> float:
    """LEMS's H(x), which PyLEMS names in generated code (`heaviside_step`) but never defines."""
    return 0.0 if x < 0 else (1.0 if x > 0 else 0.5)


def _pylems_number(fc, value: str | None) -> float | None:
    """A parameter name or a number of a resolved PyLEMS component, as an SI number (None when absent)."""
    if value is None or value == "":
        return None
    if value in fc.parameters:
        return float(fc.parameters[value].numeric_value)
    try:
        return float(value)
    except ValueError:
        return None


def _only_port(ports: list, owner: str, kind: str) -> str:
    if len(ports) != 1:
        raise NetbabelError(f"PyLEMS: no {kind} event port uniquely identifiable in {owner!r}")
    return ports[0]


def _event_callback(target, port: str, delay: float | None):
    """Deliver at once (no delay) or queue until the step after now + delay."""
    import heapq

    if not delay:
        return lambda: target.inc_event_in(port)

    def queue() -> None:
        _CLOCK["seq"] += 1
        heapq.heappush(_PENDING, (_CLOCK["t"] + delay, _CLOCK["seq"], target, port))

    return queue
