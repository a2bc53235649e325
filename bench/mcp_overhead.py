"""Measure what MCP adds to a run: the same tiny run through MCP stdio and through the Runner directly.

    PYTHONPATH=. python bench/mcp_overhead.py [--runs 5] [--max-rounds 2]

Both paths run the same graph with the same settings, image and seed on warm models (one warm-up
run each, not timed). The MCP path includes JSON-RPC over pipes, the progress notifications, and
the result (a ~0.4 MB image preview, the trajectory twice). Prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

IMAGE = ROOT / "examples" / "chelsea.png"
INSTRUCTION = "put a red party hat on the cat"


async def direct(data_dir: Path, runs: int, max_rounds: int) -> list[float]:
    """Time runs through ``Runner.start`` in this process."""
    from agent.runs import Runner
    from agent.settings import LoopSettings

    times = []
    async with Runner.open(data_dir) as runner:
        settings = LoopSettings.from_profile("tiny", data_dir=str(data_dir), max_rounds=max_rounds, seed=0)
        for i in range(runs + 1):
            started = time.perf_counter()
            record = runner.prepare(IMAGE, INSTRUCTION, settings)
            state = await runner.start(record, on_event=lambda event: None)
            assert state is not None and state.status == "done"
            if i:  # the first run warms the models up
                times.append(time.perf_counter() - started)
    return times


async def through_mcp(data_dir: Path, runs: int, max_rounds: int) -> tuple[list[float], float]:
    """Time the same runs as ``think_while_edit`` calls over stdio; also return the server start time."""
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    env = {**os.environ, "PYTHONPATH": str(ROOT), "THINKEDIT_DATA_DIR": str(data_dir)}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "servers.cli", "serve", "mcp", "--profile", "tiny"], env=env, cwd=str(ROOT)
    )
    times = []

    async def progress(p: float, total: float | None, message: str | None) -> None:
        return None

    started = time.perf_counter()
    with open(os.devnull, "w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            startup = time.perf_counter() - started
            arguments = {"image": str(IMAGE), "instruction": INSTRUCTION, "max_rounds": max_rounds, "seed": 0}
            for i in range(runs + 1):
                started = time.perf_counter()
                result = await client.call_tool("think_while_edit", arguments, progress_callback=progress)
                assert result.structured_content["status"] == "done", result
                if i:
                    times.append(time.perf_counter() - started)
    return times, startup


def main() -> None:
    """Run both paths and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="Timed runs per path (after one warm-up).")
    parser.add_argument("--max-rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        direct_times = asyncio.run(direct(data_dir, args.runs, args.max_rounds))
        mcp_times, startup = asyncio.run(through_mcp(data_dir, args.runs, args.max_rounds))
    d, m = statistics.median(direct_times), statistics.median(mcp_times)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}")
    print(f"tiny profile, max_rounds {args.max_rounds}, {args.runs} timed runs per path (medians)")
    print(f"direct Runner.start : {d * 1000:8.1f} ms")
    print(f"MCP stdio tool call : {m * 1000:8.1f} ms   (server start-up, once: {startup:.2f} s)")
    print(f"ratio MCP / direct  : {m / d:8.2f}   (overhead {1000 * (m - d):.1f} ms per run)")


if __name__ == "__main__":
    main()
