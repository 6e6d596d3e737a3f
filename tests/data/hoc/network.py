"""Simulate a network of multicompartment cells from a netbabel description, two ways.

    python network.py MODE DESCRIPTION.json OUT.json

MODE "neuron": cells built with build_neuron_cell and wired with NetCons by hand;
MODE "netpyne": cellParams / synMechParams / synapse sites from
netbabel.converters.multicompartment, connections and stimuli as NetPyNE rules.
Supports all_to_all and one_to_one projections and dc inputs (what the test network uses).
Writes {"spikes": {population: [[index, time], ...]}, "v": [...]} (spike times in ms).
"""

import json
import sys
from pathlib import Path


def pairs(rule, n_source, n_target):
    if rule == "all_to_all":
        return [(i, j) for i in range(n_source) for j in range(n_target)]
    if rule == "one_to_one":
        return [(i, i) for i in range(n_source)]
    raise SystemExit(f"rule {rule} not supported by this test runner")


def mechanisms(h, d):
    from netbabel.nmodl import compile_mechanisms, find_library

    dirs = sorted({d.resolve_path(m).parent for ct in d.cell_types.values() for m in (ct.mod_files or [])})
    if dirs:
        h.nrn_load_dll(str(find_library(compile_mechanisms(dirs))))


def run_neuron(d):
    from neuron import h

    from netbabel.converters.multicompartment import build_neuron_cell

    h.load_file("stdrun.hoc")
    mechanisms(h, d)
    cells = {pop: [build_neuron_cell(d.cell_types[p.cell_type], d, prefix=f"{pop}[{i}].") for i in range(d.size(pop))]
             for pop, p in d.populations.items()}
    keep, spikes = [], {pop: [] for pop in cells}
    for pop, group in cells.items():
        for i, cell in enumerate(group):
            t = h.Vector()
            nc = cell.spike_netcon(None)
            nc.record(t)
            keep.append((nc, t, pop, i))
    for proj in d.projections:
        site = d.synapse_types[proj.synapse_type].site
        for i, j in pairs(proj.rule.type, d.size(proj.source), d.size(proj.target)):
            nc = cells[proj.source][i].spike_netcon(cells[proj.target][j].synapses[site])
            nc.weight[0] = d.value(proj.weight)
            nc.delay = d.value(proj.delay)
            keep.append(nc)
    for inp in d.inputs:
        for cell in cells[inp.target]:
            clamp = h.IClamp(cell.secs[inp.section](inp.x))
            clamp.amp = d.value(inp.amplitude) / 1000.0
            clamp.delay = d.value(inp.start)
            clamp.dur = d.value(inp.stop) - d.value(inp.start)
            keep.append(clamp)
    v = h.Vector()
    v.record(cells["PYR"][0].secs["soma"](0.5)._ref_v)
    h.celsius, h.v_init = d.value(d.simulation.temperature), d.value(d.simulation.v_init)
    h.dt = d.value(d.simulation.dt)
    h.steps_per_ms = 1.0 / h.dt
    h.finitialize(h.v_init)
    h.continuerun(d.value(d.simulation.duration))
    for nc, t, pop, i in [k for k in keep if isinstance(k, tuple)]:
        spikes[pop] += [[i, float(x)] for x in t]
    return {"spikes": spikes, "v": list(v)}


def run_netpyne(d):
    from neuron import h

    mechanisms(h, d)
    from netpyne import sim, specs

    from netbabel.converters import multicompartment as mc

    net, cfg = specs.NetParams(), specs.SimConfig()
    sites = {}
    for label, ct in d.cell_types.items():
        net.cellParams[label] = mc.netpyne_cell_params(ct, d)
        net.synMechParams.update(mc.netpyne_syn_mech_params(ct, d, label_prefix=f"{label}."))
        sites[label] = mc.netpyne_synapse_sites(ct, label_prefix=f"{label}.")
    for pop, p in d.populations.items():
        net.popParams[pop] = {"cellType": p.cell_type, "numCells": d.size(pop)}
    for proj in d.projections:
        site = sites[d.populations[proj.target].cell_type][d.synapse_types[proj.synapse_type].site]
        net.connParams[proj.name] = {"preConds": {"pop": proj.source}, "postConds": {"pop": proj.target},
                                     "connList": pairs(proj.rule.type, d.size(proj.source), d.size(proj.target)),
                                     "weight": d.value(proj.weight), "delay": d.value(proj.delay), **site}
    for inp in d.inputs:
        net.stimSourceParams[inp.name] = {"type": "IClamp", "del": d.value(inp.start),
                                          "dur": d.value(inp.stop) - d.value(inp.start),
                                          "amp": d.value(inp.amplitude) / 1000.0}
        net.stimTargetParams[inp.name + "->"] = {"source": inp.name, "conds": {"pop": inp.target},
                                                 "sec": inp.section, "loc": inp.x}
    cfg.duration, cfg.dt = d.value(d.simulation.duration), d.value(d.simulation.dt)
    cfg.recordStep = cfg.dt
    cfg.hParams = {"celsius": d.value(d.simulation.temperature), "v_init": d.value(d.simulation.v_init)}
    cfg.pt3dRelativeToCellLocation = False
    cfg.recordCells = [("PYR", 0)]
    cfg.recordTraces = {"v": {"sec": "soma", "loc": 0.5, "var": "v"}}
    cfg.verbose = False
    sim.create(netParams=net, simConfig=cfg, output=False)
    sim.simulate()
    where = {c["gid"]: (c["tags"]["pop"], c["tags"]["cellLabel"] if "cellLabel" in c["tags"] else None)
             for c in sim.net.allCells}
    first = {}
    for c in sorted(sim.net.allCells, key=lambda c: c["gid"]):
        first.setdefault(c["tags"]["pop"], c["gid"])
    spikes = {pop: [] for pop in d.populations}
    for t, gid in zip(sim.allSimData["spkt"], sim.allSimData["spkid"]):
        pop = where[int(gid)][0]
        spikes[pop].append([int(gid) - first[pop], float(t)])
    v = list(next(iter(sim.allSimData["v"].values())))
    return {"spikes": spikes, "v": v}


def main():
    mode, description, out = sys.argv[1:]
    from netbabel.description import load

    d = load(description)
    result = run_neuron(d) if mode == "neuron" else run_netpyne(d)
    for pop in result["spikes"]:
        result["spikes"][pop].sort(key=lambda s: (s[1], s[0]))
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
