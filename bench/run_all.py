"""Run every benchmark in one go and print one table of side-by-side ratios (``make bench``).

    PYTHONPATH=. python bench/run_all.py [--quick]

Each benchmark module exposes ``figures()``, which measures its ratio with alternating samples;
this script calls them one after another on the same machine and prints a Markdown table, with
the machine it ran on, ready for the README's Performance section. Ratios are what to compare:
absolute times move with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import editor_server, loop, mcp_overhead  # noqa: E402


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


def ms(seconds: float) -> str:
    """Format seconds as milliseconds."""
    return f"{seconds * 1000:.0f} ms"


def table(loops: dict[str, float], mcp: dict[str, float], editor: dict[str, float]) -> str:
    """Return the figures as one Markdown table."""
    rows = [
        ("loop overhead, per round (3 tiny rounds)", f"graph {ms(loops['graph_round_s'])}, plain loop "
         f"{ms(loops['plain_round_s'])}", f"graph ÷ plain = **{loops['graph_over_plain']:.2f}**"),
        ("MCP stdio vs direct graph call, per 2-round run", f"direct {ms(mcp['direct_s'])}, MCP {ms(mcp['mcp_s'])}",
         f"MCP ÷ direct = **{mcp['mcp_over_direct']:.2f}**"),
        ("editor server vs in-process, per edit (1 client)", f"in-process {ms(editor['in_process_s'])}, server "
         f"{ms(editor['server_s'])}", f"server ÷ in-process = **{editor['server_over_in_process']:.2f}**"),
        ("editor throughput, 8 concurrent clients", f"batching on {editor['batching_on_per_s']:.1f} edits/s, off "
         f"{editor['batching_off_per_s']:.1f} edits/s", f"on ÷ off = **{editor['on_over_off']:.2f}**"),
        ("where a graph round's wall time goes", f"edit {ms(loops['edit_s'])}, think {ms(loops['think_s'])}, "
         f"other {ms(loops['graph_round_s'] - loops['edit_s'] - loops['think_s'])}",
         f"edit **{loops['edit_share']:.0%}**, think **{loops['think_share']:.0%}**, "
         f"other **{loops['other_share']:.0%}**"),
        ("best-of-K, a one-round run on CPU", f"K=4 {ms(loops['k4_round_s'])}, K=1 {ms(loops['k1_round_s'])}",
         f"K=4 ÷ K=1 = **{loops['k4_over_k1']:.2f}**"),
    ]
    lines = ["| measure | figures (medians) | ratio |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main() -> None:
    """Run the benchmarks in turn and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Fewer samples (a smoke run, noisier ratios).")
    quick = parser.parse_args().quick
    # Model libraries draw progress bars while loading; the table is the output here.
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    started = time.perf_counter()
    print("loop overhead, round split, best-of-K ...", file=sys.stderr, flush=True)
    loops = loop.figures(samples=2 if quick else 5)
    print("MCP stdio vs direct ...", file=sys.stderr, flush=True)
    mcp = mcp_overhead.figures(runs=3 if quick else 10)
    print("editor server vs in-process, batching on vs off ...", file=sys.stderr, flush=True)
    editor = editor_server.figures(["--rounds", "1", "--edits", "5"] if quick else [])
    print(table(loops, mcp, editor))
    print(f"\nmachine: {machine()}; all benchmarks took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
