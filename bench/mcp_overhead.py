"""Measure what MCP adds to a run: the same tiny run through MCP stdio and through the Runner directly.

    PYTHONPATH=. python bench/mcp_overhead.py [--runs 10] [--max-rounds 2]

Both paths run the same graph with the same settings on warm models (one warm-up run each, not
timed). Every run brings a photo and a seed the artifact store has not seen (``bench.photos``), as
a user's run does: one photo and seed over and over would let every run after the first skip its
PNG encodes and its decode, on both sides. The thresholds are out of reach, so every run takes
``--max-rounds`` rounds on both sides. The MCP path includes JSON-RPC over pipes, the progress
notifications, and the result (an image preview, the run view as structured content and as JSON
text). Prints the medians and ``MCP stdio ÷ direct``: the per-pair ratio's median, IQR and the
median's confidence interval.
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bench_support.photos import IMAGE, INSTRUCTION, Photos  # noqa: E402
from tests.bench_support.profile import every_round_profile  # noqa: E402
from tests.bench_support.spread import Pressure, pair_ratios, spread  # noqa: E402


async def measure(data_dir: Path, runs: int, max_rounds: int) -> tuple[list[float], list[float], float]:
    """Time the same run through ``Runner.start`` here and as ``think_while_edit`` over stdio, interleaved.

    Interleaving keeps slow drifts of the machine out of the ratio, and the pairs alternate which
    side goes first (direct then MCP, MCP then direct, ...), so neither always runs just after the
    other's torch threads; the two never run at once, so they do not compete for the cores.
    """
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    from thinkedit.agent.runs import Runner
    from thinkedit.agent.settings import LoopSettings

    photos = Photos(data_dir / "photos")
    profile = every_round_profile(data_dir / "every-round.toml")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "THINKEDIT_DATA_DIR": str(data_dir)}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "thinkedit.servers.cli", "serve", "mcp", "--profile", str(profile)],
        env=env, cwd=str(ROOT),
    )
    settings = LoopSettings.from_profile(str(profile), data_dir=str(data_dir), max_rounds=max_rounds, seed=0)

    async def progress(p: float, total: float | None, message: str | None) -> None:
        return None

    async def one_direct(runner: Runner) -> float:
        photo = photos.fresh(IMAGE)
        fresh = settings.model_copy(update={"seed": photos.seed()})
        started = time.perf_counter()
        state = await runner.start(runner.prepare(photo, INSTRUCTION, fresh), on_event=lambda event: None)
        seconds = time.perf_counter() - started
        assert state is not None and state.status == "done" and len(state.rounds) == max_rounds, state
        photos.check(state)
        return seconds

    async def one_mcp(client: Client) -> float:
        arguments = {"image": str(photos.fresh(IMAGE)), "instruction": INSTRUCTION, "max_rounds": max_rounds,
                     "seed": photos.seed()}
        started = time.perf_counter()
        result = await client.call_tool("think_while_edit", arguments, progress_callback=progress)
        seconds = time.perf_counter() - started
        out = result.structured_content
        assert out["status"] == "done" and len(out["rounds"]) == max_rounds, result
        photos.check_digests([out["source_image"]["sha256"], *(r["image"]["sha256"] for r in out["rounds"]),
                              *(c["image"]["sha256"] for r in out["rounds"] for c in r["candidates"])])
        return seconds

    direct_times, mcp_times = [], []
    async with Runner.open(data_dir) as runner:
        await one_direct(runner)  # warm-up: builds and loads the tiny models
        started = time.perf_counter()
        with open(os.devnull, "w") as errlog:
            async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
                startup = time.perf_counter() - started
                await one_mcp(client)  # warm-up in the server process
                for index in range(runs):
                    if index % 2 == 0:
                        direct_times.append(await one_direct(runner))
                        mcp_times.append(await one_mcp(client))
                    else:
                        mcp_times.append(await one_mcp(client))
                        direct_times.append(await one_direct(runner))
    return direct_times, mcp_times, startup


def figures(runs: int = 10, max_rounds: int = 2) -> dict[str, Any]:
    """Time both paths in a scratch data directory; return the spreads, the per-pair ratio and the start-up."""
    from thinkedit.agent.settings import LoopSettings
    from thinkedit.tools.registry import prime_in_process_runtime

    tiny = LoopSettings.from_profile("tiny")
    prime_in_process_runtime(tiny.editor, tiny.thinker)  # as the CLI and the server do
    with tempfile.TemporaryDirectory() as tmp, Pressure() as pressure:
        direct_times, mcp_times, startup = asyncio.run(measure(Path(tmp), runs, max_rounds))
    d, m = statistics.median(direct_times), statistics.median(mcp_times)
    return {"direct_s": d, "mcp_s": m, "direct": spread(direct_times), "mcp": spread(mcp_times),
            "mcp_over_direct": pair_ratios(mcp_times, direct_times), "startup_s": startup,
            "pressure": pressure.text()}


def main() -> None:
    """Run both paths and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="Timed runs per path (after one warm-up).")
    parser.add_argument("--max-rounds", type=int, default=2)
    args = parser.parse_args()
    f = figures(args.runs, args.max_rounds)
    d, m = f["direct_s"], f["mcp_s"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}")
    print(f"tiny profile, max_rounds {args.max_rounds}, {args.runs} timed runs per path (medians)")
    print(f"direct Runner.start : {d * 1000:8.1f} ms")
    print(f"MCP stdio tool call : {m * 1000:8.1f} ms   (server start-up, once: {f['startup_s']:.2f} s)")
    ratio = f["mcp_over_direct"]
    print(f"MCP stdio ÷ direct  : {ratio.text()}, median within {ratio.interval()}   "
          f"(overhead {1000 * (m - d):.1f} ms per run)")
    print(f["pressure"])


if __name__ == "__main__":
    main()
