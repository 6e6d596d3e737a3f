"""Membrane potential traces of one cell under a current clamp, for netbabel's hoc tests.

    python trace.py SPEC.json OUT.json

SPEC["mode"]: "template" (the original hoc template), "neuron" (the cell rebuilt from the
netbabel description with netbabel.converters.multicompartment.build_neuron_cell) or
"netpyne" (rebuilt by NetPyNE from netpyne_cell_params). Each mode runs in its own process.
Fixed step (dt from the spec), IClamp at SPEC["stim"], v recorded at SPEC["record"] sites.
"""

import json
import sys


def template_cell(h, spec):
    for path in spec.get("load", []):
        assert h.load_file(1, path)
    assert h.load_file(1, spec["file"])
    cell = getattr(h, spec["template"])(*spec.get("args", []))
    prefix = cell.hname() + "."
    secs = {s.name()[len(prefix):]: s for s in h.allsec() if s.name().startswith(prefix)}
    return cell, secs


def description_cell(h, spec):
    from netbabel.converters.multicompartment import build_neuron_cell
    from netbabel.description import load

    d = load(spec["description"])
    cell_type = d.cell_types[d.populations[spec["population"]].cell_type]
    cell = build_neuron_cell(cell_type, d)
    h.celsius = d.value(d.simulation.temperature)
    h.v_init = d.value(d.simulation.v_init)
    return cell, cell.secs


def run_neuron(spec):
    from neuron import h

    h.load_file("stdrun.hoc")
    if spec.get("library"):
        h.nrn_load_dll(spec["library"])
    cell, secs = template_cell(h, spec) if spec["mode"] == "template" else description_cell(h, spec)
    sec, x, amp, delay, dur = spec["stim"]
    clamp = h.IClamp(secs[sec](x))
    clamp.amp, clamp.delay, clamp.dur = amp, delay, dur
    vecs = []
    for name, pos in spec["record"]:
        vec = h.Vector()
        vec.record(secs[name](pos)._ref_v)
        vecs.append(vec)
    h.dt = spec["dt"]
    h.steps_per_ms = 1.0 / spec["dt"]
    h.finitialize(h.v_init)
    h.continuerun(spec["tstop"])
    result = {"celsius": h.celsius, "v_init": h.v_init, "traces": [list(v) for v in vecs]}
    del cell
    return result


def run_netpyne(spec):
    from neuron import h

    if spec.get("library"):
        h.nrn_load_dll(spec["library"])
    from netpyne import sim, specs

    from netbabel.converters.multicompartment import netpyne_cell_params
    from netbabel.description import load

    d = load(spec["description"])
    cell_type = d.cell_types[d.populations[spec["population"]].cell_type]
    net, cfg = specs.NetParams(), specs.SimConfig()
    net.cellParams["cell"] = netpyne_cell_params(cell_type, d)
    net.popParams["P"] = {"cellType": "cell", "numCells": 1}
    sec, x, amp, delay, dur = spec["stim"]
    net.stimSourceParams["clamp"] = {"type": "IClamp", "del": delay, "dur": dur, "amp": amp}
    net.stimTargetParams["clamp->P"] = {"source": "clamp", "conds": {"pop": "P"}, "sec": sec, "loc": x}
    cfg.duration, cfg.dt, cfg.recordStep = spec["tstop"], spec["dt"], spec["dt"]
    cfg.hParams = {"celsius": d.value(d.simulation.temperature), "v_init": d.value(d.simulation.v_init)}
    cfg.pt3dRelativeToCellLocation = False
    cfg.verbose = False
    cfg.recordCells = ["all"]
    cfg.printRunTime = False
    cfg.recordTraces = {f"v{i}": {"sec": name, "loc": pos, "var": "v"} for i, (name, pos) in enumerate(spec["record"])}
    sim.create(netParams=net, simConfig=cfg, output=False)
    sim.simulate()
    traces = [list(sim.allSimData[f"v{i}"]["cell_0"]) for i in range(len(spec["record"]))]
    return {"celsius": h.celsius, "v_init": h.v_init, "traces": traces}


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    result = run_netpyne(spec) if spec["mode"] == "netpyne" else run_neuron(spec)
    with open(sys.argv[2], "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
