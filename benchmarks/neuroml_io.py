"""NeuroML2 export and import speed: netbabel against libNeuroML, the library a user would otherwise use.

Model: a Brunel-like network of iaf_psc_exp cells (NE = 4 order, NI = order, in-degrees 10% of each
population, so 0.125 x order^2 x 10 connections... see the table) with Poisson drive.
- export: netbabel (rules drawn by netbabel.instantiate, written as .net.nml + LEMS) vs building the same
  connections as libNeuroML objects and writing them with NeuroMLWriter (the libNeuroML way);
- import: netbabel's importer (safe XML parse, unit checks, SONATA edges written) vs libNeuroML's
  loaders.read_neuroml2_file (objects only, no conversion).

    python benchmarks/neuroml_io.py [--order 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def model(order: int) -> dict:
    data = json.loads((ROOT / "reference_models" / "brunel2000" / "brunel2000.json").read_text())
    data["name"] = "brunel_exp"
    data["parameters"]["order"] = order
    data["parameters"]["J"] = 20.0
    data["cell_types"]["lif"] = {"model": "iaf_psc_exp", "params": {
        "C_m": 250.0, "tau_m": 20.0, "t_ref": 2.0, "E_L": 0.0, "V_reset": 10.0, "V_m": 0.0, "V_th": 20.0,
        "tau_syn_ex": 0.5, "tau_syn_in": 0.5}}
    data["simulation"]["duration"] = 100.0
    return data


def libneuroml_reference(network_file: Path, out: Path) -> float:
    """Rebuild the exported network with libNeuroML objects and write it: the time of the libNeuroML way."""
    import neuroml
    from neuroml.loaders import read_neuroml2_file
    from neuroml.writers import NeuroMLWriter

    doc = read_neuroml2_file(str(network_file))
    net = doc.networks[0]
    conns = [[(c.pre_cell_id, c.post_cell_id, c.weight, c.delay) for c in p.connection_wds] for p in net.projections]
    t0 = time.perf_counter()
    for p, cs in zip(net.projections, conns):
        p.connection_wds = [neuroml.ConnectionWD(id=j, pre_cell_id=a, post_cell_id=b, weight=w, delay=d)
                            for j, (a, b, w, d) in enumerate(cs)]
    NeuroMLWriter.write(doc, str(out))
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--order", type=int, default=200)
    args = parser.parse_args()
    from netbabel.description import Description
    from netbabel.exporters.neuroml import export
    from netbabel.importers.neuroml import read

    d = Description.from_dict(model(args.order), base_dir=ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        export(d, tmp / "warmup", argparse.Namespace(mode="native", neuroml_hdf5="never"))  # imports
        t0 = time.perf_counter()
        result = export(d, tmp / "nb", argparse.Namespace(mode="native", neuroml_hdf5="never"))
        t_export = time.perf_counter() - t0
        n = sum(1 for line in open(result.network_file) if "<connectionWD" in line)
        t_ref = libneuroml_reference(result.network_file, tmp / "ref.net.nml")
        t0 = time.perf_counter()
        read(str(result.lems_file), argparse.Namespace(neuroml_workdir=str(tmp / "imp")))
        t_import = time.perf_counter() - t0
        from neuroml.loaders import read_neuroml2_file

        t0 = time.perf_counter()
        read_neuroml2_file(str(result.network_file))
        t_load = time.perf_counter() - t0
        size = result.network_file.stat().st_size / 1e6
    print(f"NeuroML2, Brunel-like network, order {args.order}: {n} connections, {size:.1f} MB of XML")
    print(f"{'task':<60}{'netbabel s':>12}{'libNeuroML s':>14}{'ratio':>8}")
    print(f"{'export (netbabel: rules + instantiate + XML + LEMS + XSD)':<60}{t_export:>12.2f}{t_ref:>14.2f}"
          f"{t_export / t_ref:>8.2f}")
    print(f"{'import (netbabel: parse + units + SONATA edges)':<60}{t_import:>12.2f}{t_load:>14.2f}"
          f"{t_import / t_load:>8.2f}")
    print("libNeuroML export column: building ConnectionWD objects + NeuroMLWriter.write only (no rules, no LEMS);")
    print("libNeuroML import column: loaders.read_neuroml2_file (objects only, no conversion).")


if __name__ == "__main__":
    sys.exit(main())
