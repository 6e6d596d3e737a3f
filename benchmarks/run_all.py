"""Run every benchmark with its default (small) sizes, one after another, and print their tables.

    python benchmarks/run_all.py [NAME ...]     # e.g. instantiate nest_export

Each benchmark is a standalone script in this folder that measures netbabel against the tool a
user would otherwise use (NEST, NetPyNE, libNeuroML, libsonata, the upstream multi-area code) in
the same run; see its docstring for the larger sizes it accepts.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["instantiate", "nest_export", "netpyne_export", "neuroml_io", "sonata_import",
              "multiarea", "hoc_import"]


def main(names: list[str]) -> int:
    failed = []
    for name in names or BENCHMARKS:
        script = HERE / f"{name}.py"
        print(f"\n=== {name} ({script.name}) ===", flush=True)
        start = time.perf_counter()
        status = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        print(f"--- {name}: exit {status}, {time.perf_counter() - start:.0f} s", flush=True)
        if status != 0:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
