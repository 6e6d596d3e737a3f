"""Rebuild hoc_network.json from the hoc templates in hoc/ (run from anywhere).

    python reference_models/hoc_network/build.py

Imports each template with `netbabel convert` (which runs the hoc code in NEURON)
and assembles a small network of the imported cell types.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def imported_cell(tmp: Path, hoc: str, template: str, *extra: str) -> dict:
    out = tmp / f"{template}.json"
    subprocess.run([sys.executable, "-m", "netbabel.cli", "convert", str(HERE / "hoc" / hoc), "--template", template,
                    *extra, "-o", str(out)], check=True, cwd=tmp)
    data = json.loads(out.read_text())
    cell = data["cell_types"][template]
    cell["mod_files"] = [f"mod/{Path(m).name}" for m in cell.get("mod_files", [])]
    cell["source"]["file"] = f"hoc/{hoc}"
    cell["source"]["mod_dirs"] = ["mod"] if cell["source"]["mod_dirs"] else []
    return cell


def build() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        pyramidal = imported_cell(Path(tmp), "pyramidal5.hoc", "Pyramidal5", "--mod-dir", str(HERE / "mod"),
                                  "--args", "1.2")
        ball_stick = imported_cell(Path(tmp), "ball_stick.hoc", "BallStick")
    return {
        "netbabel": "1",
        "name": "hoc_network",
        "metadata": {
            "title": "A small network of imported hoc cells",
            "description": "Ball-and-stick cells driven by a current step excite 5-compartment pyramidal cells "
                           "(Exp2Syn on the tuft), which feed back onto the ball-and-stick dendrites (ExpSyn). "
                           "Both cell types were imported from NEURON hoc templates (hoc/) by netbabel.",
            "license": "CC-BY-4.0",
        },
        "cell_types": {"Pyramidal5": pyramidal, "BallStick": ball_stick},
        "synapse_types": {
            "to_pyramidal": {"receptor": "excitatory", "site": "synAMPA"},
            "to_ball_stick": {"receptor": "excitatory", "site": "synE"},
        },
        "populations": {
            "BS": {"cell_type": "BallStick", "size": 4},
            "PYR": {"cell_type": "Pyramidal5", "size": 3},
        },
        "projections": [
            {"name": "BS_to_PYR", "source": "BS", "target": "PYR", "synapse_type": "to_pyramidal",
             "rule": {"type": "all_to_all"}, "weight": 0.02, "delay": 2.0},
            {"name": "PYR_to_BS", "source": "PYR", "target": "BS", "synapse_type": "to_ball_stick",
             "rule": {"type": "all_to_all"}, "weight": 0.001, "delay": 3.0},
        ],
        "inputs": [
            {"name": "step", "type": "dc", "target": "BS", "amplitude": 150.0, "start": 50.0, "stop": 350.0,
             "section": "soma", "x": 0.5},
        ],
        "simulation": {"duration": 400.0, "dt": 0.025, "seed": 1, "temperature": 6.3, "v_init": -65.0,
                       "record": {"spikes": "all"}},
    }


if __name__ == "__main__":
    path = HERE / "hoc_network.json"
    path.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {path}")
