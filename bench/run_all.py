"""Run every benchmark in one go and print one table of side-by-side ratios (``make bench``).

    PYTHONPATH=. python bench/run_all.py [--quick]

Each benchmark module exposes ``figures()``, which measures its ratios as pairs of samples taken
back to back; this script calls them one after another and prints one Markdown table with every
ratio of issue 14 (median of per-pair ratios, its IQR, the target and whether it is met), the CPU
pressure (PSI) while each was measured, the scaling table of ``bench/loop.py``, and the machine.
Ratios are what to compare: absolute times move with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import editor_server, loop, mcp_overhead, startup  # noqa: E402
from tests.bench_support.table import table  # noqa: E402


def machine() -> str:
    """Describe the machine: cores, CPU model, torch and Python versions, load average."""
    import torch

    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(os.cpu_count())
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{nproc} CPU cores (nproc), {model}, torch {torch.__version__}, Python {platform.python_version()}, "
            f"load average at the end {load}")


def main() -> None:
    """Run the benchmarks in turn and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Fewer samples (a smoke run, noisier ratios).")
    quick = parser.parse_args().quick
    # Model libraries draw progress bars while loading; the table is the output here.
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    started = time.perf_counter()
    print("start-up of --help and serve mcp ...", file=sys.stderr, flush=True)
    starts = startup.figures(samples=3 if quick else 5)
    print("loop overhead, bookkeeping, best-of-K, scaling ...", file=sys.stderr, flush=True)
    loops = loop.figures(samples=3 if quick else 11, scaling_samples=1 if quick else 3)
    print("MCP stdio vs direct ...", file=sys.stderr, flush=True)
    mcp = mcp_overhead.figures(runs=3 if quick else 10)
    print("editor server vs in-process and the paper's design, batching on vs off ...", file=sys.stderr, flush=True)
    editor = editor_server.figures(["--rounds", "3", "--edits", "3", "--each", "3"] if quick else [])
    print(table(loops, mcp, editor, starts))
    print("\nscaling (bench/loop.py):\n")
    print(loop.scaling_table(loops["scaling"]))
    print(f"\nmachine: {machine()}; all benchmarks took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
