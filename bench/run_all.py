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
from bench.spread import Spread  # noqa: E402


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


def verdict(value: Spread, target: float, at_most: bool = True) -> str:
    """Say whether the median meets the target, and whether its confidence interval settles it."""
    def meets(x: float) -> bool:
        return x <= target if at_most else x >= target

    worst, best = (value.high, value.low) if at_most else (value.low, value.high)
    if meets(value.median):
        return "met" if meets(worst) else "met by the median (its interval reaches past the target)"
    return "**not met**" if not meets(best) else "**not met** by the median (its interval reaches the target)"


def table(loops: dict[str, Any], mcp: dict[str, Any], editor: dict[str, Any], starts: dict[str, Any]) -> str:
    """Return the issue's ratios as one Markdown table (median of per-pair ratios, IQR, target)."""
    h = loops["headline"]
    sizes = {name.split(" px")[0]: row for name, row in loops["scaling"] if "3 rounds" in name}
    book, floor = (" / ".join(sizes[k][key].text(0, 1000, " ms") for k in ("128×128", "256×256", "512×512"))
                   for key in ("bookkeeping", "bare_bookkeeping"))
    rows = [
        ("graph ÷ plain loop, 3 rounds, 451×300", *shown(h["graph_over_plain"]), "≤ 1.02",
         verdict(h["graph_over_plain"], 1.02), loops["pressure"]),
        ("bookkeeping per round outside edit and critique, 128 / 256 / 512 px", book,
         sizes["512×512"]["bookkeeping"].interval(0, 1000, " ms"), "≤ 10 ms at 512 px",
         verdict(sizes["512×512"]["bookkeeping"], 0.010), loops["pressure"]),
        ("the same for a bare LangGraph graph of the same steps, engines and saver (the floor), 128 / 256 / 512 px",
         floor, sizes["512×512"]["bare_bookkeeping"].interval(0, 1000, " ms"), "(no target)", "", loops["pressure"]),
        ("graph ÷ that bare graph, 3 rounds, 451×300", *shown(h["graph_over_bare"]), "(no target)", "",
         loops["pressure"]),
        ("editor server ÷ in-process, per edit (128 px, 4 steps, 1 client)",
         *shown(editor["server_over_in_process"]), "≤ 1.05", verdict(editor["server_over_in_process"], 1.05),
         editor["pressure"]),
        ("editor server ÷ the paper's design (FastAPI + a worker process per device)",
         *shown(editor["server_over_paper"]), "≤ 1.0", verdict(editor["server_over_paper"], 1.0), editor["pressure"]),
        ("MCP stdio ÷ direct, 2 rounds", *shown(mcp["mcp_over_direct"]), "≤ 1.03",
         verdict(mcp["mcp_over_direct"], 1.03), mcp["pressure"]),
        ("`thinkedit serve mcp`: time until it answers `initialize` (a fresh process, empty data dir)",
         *shown(starts["initialize"], 2, 1, " s"), "≤ 1.0 s", verdict(starts["initialize"], 1.0), starts["pressure"]),
        ("`thinkedit serve mcp`: time until it answers `tools/list`",
         *shown(starts["tools_list"], 2, 1, " s"), "(no target)", "", starts["pressure"]),
        ("`thinkedit --help`", *shown(starts["help"], 2, 1, " s"), "≤ 0.5 s", verdict(starts["help"], 0.5),
         starts["pressure"]),
        ("batching on ÷ off, 8 clients", *shown(editor["on_over_off"]), "≥ 1.8",
         verdict(editor["on_over_off"], 1.8, at_most=False), editor["pressure"]),
        ("best-of-K, K=4 ÷ K=1, one round on CPU", *shown(loops["k4_over_k1"]), "(no target)", "",
         loops["pressure"]),
    ]
    lines = ["| ratio | median (IQR, pairs) | the median's interval | target | | measured under |",
             "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def shown(value: Spread, digits: int = 2, scale: float = 1.0, unit: str = "") -> tuple[str, str]:
    """Return a figure's two columns: median with IQR, and the median's interval, in one format."""
    return value.text(digits, scale, unit), value.interval(digits, scale, unit)


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
