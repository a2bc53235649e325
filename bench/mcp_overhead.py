"""Measure what MCP adds to a run: the same tiny run through MCP stdio and through the Runner directly.

    PYTHONPATH=. python bench/mcp_overhead.py [--runs 10] [--max-rounds 2]

Both paths run the same graph with the same settings on warm models (one warm-up run each, not
timed). Every run brings a photo and a seed its artifact store has not seen (``bench.photos``), as
a user's run does: one photo and seed over and over would let every run after the first skip its
PNG encodes and its decode. Each side has a data directory of its own, so the sides of one pair
take the same photo and seed: they do the same work (the benchmark checks that they stored the same
images), and a pair's ratio is not moved by one side's thinker writing a longer answer than the
other's. The thresholds are out of reach, so every run takes ``--max-rounds`` rounds on every side.
The MCP path includes JSON-RPC over pipes, the progress
notifications, and the result (an image preview, the run view as structured content and as JSON
text). Prints the medians and ``MCP stdio ÷ direct``: the per-pair ratio's median, IQR and the
median's confidence interval; and, where ``/proc`` is there (Linux), the CPU time each path spends
per run (the direct run's process; the server process plus this, the client's, process), and the part
of it on the event loop's thread.

It also times a third side, the floor: the very direct run in a second process of this script
(``--twin``, fed over a pipe, no MCP), and prints ``second process ÷ direct``. Two processes doing
the same work differ by themselves (their heaps, caches and threads), so MCP's own cost is what
``MCP stdio ÷ direct`` shows beyond that floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bench_support.photos import IMAGE, INSTRUCTION, Photos  # noqa: E402
from tests.bench_support.profile import every_round_profile  # noqa: E402
from tests.bench_support.spread import Pressure, pair_ratios, spread  # noqa: E402

if TYPE_CHECKING:
    from thinkedit.agent.runs import Runner
    from thinkedit.agent.settings import LoopSettings
    from thinkedit.agent.state import RunState


def cpu_seconds(pid: int, thread: int | None = None) -> float | None:
    """Return the CPU time (user + system) process ``pid`` has used, all threads or one; None without ``/proc``."""
    path = Path(f"/proc/{pid}/stat") if thread is None else Path(f"/proc/{pid}/task/{thread}/stat")
    try:
        fields = path.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_now(pid: int) -> tuple[float, float] | None:
    """Return (all threads, main thread) CPU seconds of ``pid``: the main thread runs its event loop."""
    whole, main = cpu_seconds(pid), cpu_seconds(pid, pid)
    return None if whole is None or main is None else (whole, main)


def server_pid() -> int | None:
    """Return the pid of this process's ``serve mcp`` child (None where ``/proc`` is not there)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" ", 1)
            parent = int(rest.rsplit(")", 1)[1].split()[1])
            if parent == os.getpid() and "thinkedit.servers.cli" in stat.with_name("cmdline").read_text():
                return int(pid)
        except (OSError, ValueError, IndexError):
            continue
    return None


class CpuTimes:
    """Collect the CPU seconds each path spends per timed run (empty where ``/proc`` is not there).

    ``*_loop`` is the part spent on the process's main thread, which runs its event loop: the graph's
    steps and, in the server, the MCP session; the rest is the worker threads' (the models, encoding).
    """

    def __init__(self) -> None:
        self.parts: dict[str, list[float]] = {
            name: [] for name in ("direct", "direct_loop", "server", "server_loop", "client", "twin", "twin_loop")
        }

    def add(self, name: str, before: tuple[float, float] | None, after: tuple[float, float] | None) -> None:
        """Record one run's CPU of ``name`` (and of its main thread) from readings before and after it."""
        if before is not None and after is not None:
            self.parts[name].append(after[0] - before[0])
            if f"{name}_loop" in self.parts:
                self.parts[f"{name}_loop"].append(after[1] - before[1])

    def means_ms(self) -> dict[str, float] | None:
        """Return the mean CPU milliseconds per run of each part, or None if nothing was measured."""
        if not all(self.parts.values()):
            return None
        return {name: 1000 * statistics.mean(values) for name, values in self.parts.items()}


async def measure(
    data_dir: Path, runs: int, max_rounds: int, cpu: CpuTimes
) -> tuple[list[float], list[float], list[float], float]:
    """Time the same run directly here (``start_run``), as ``think_while_edit`` over stdio and in a twin process.

    Each pair's three runs take one fresh photo and seed, each side in its own data directory.
    Interleaving keeps slow drifts of the machine out of the ratios, and the pairs rotate which
    side goes first (direct, MCP, twin; then MCP, twin, direct; ...), so none always runs just after
    another's torch threads; no two run at once, so they do not compete for the cores.
    """
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    from thinkedit.agent.runs import Runner
    from thinkedit.agent.settings import LoopSettings

    photos = Photos(data_dir / "photos")
    profile = every_round_profile(data_dir / "every-round.toml")
    dirs = {side: data_dir / side for side in SIDES}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "thinkedit.servers.cli", "serve", "mcp", "--profile", str(profile),
                                   "--allow-root", str(photos.directory)],
        env={**env, "THINKEDIT_DATA_DIR": str(dirs["mcp"])}, cwd=str(ROOT),
    )
    settings = LoopSettings.from_profile(str(profile), data_dir=str(dirs["direct"]), max_rounds=max_rounds, seed=0)
    same = SameWork()

    async def progress(p: float, total: float | None, message: str | None) -> None:
        return None

    twin = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).resolve()), "--twin", str(dirs["twin"]), str(profile), str(max_rounds),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )

    async def one_twin(photo: Path, seed: int, timed: bool = True) -> float:
        assert twin.stdin is not None and twin.stdout is not None
        cpu_started = cpu_now(twin.pid)
        twin.stdin.write(json.dumps({"photo": str(photo), "seed": seed}).encode() + b"\n")
        await twin.stdin.drain()
        line = await twin.stdout.readline()
        if not line:
            raise RuntimeError(f"the twin process exited with code {await twin.wait()}")
        answer = json.loads(line)
        if timed:
            cpu.add("twin", cpu_started, cpu_now(twin.pid))
        same.check("twin", answer["digests"])
        return float(answer["seconds"])

    async def one_direct(runner: Runner, photo: Path, seed: int, timed: bool = True) -> float:
        cpu_started = cpu_now(os.getpid())
        seconds, state = await start_run(runner, photo, settings, seed)
        if timed:
            cpu.add("direct", cpu_started, cpu_now(os.getpid()))
        same.check("direct", Photos.digests(state))
        return seconds

    async def one_mcp(client: Client, server: int | None, photo: Path, seed: int, timed: bool = True) -> float:
        arguments = {"image": str(photo), "instruction": INSTRUCTION, "max_rounds": max_rounds, "seed": seed}
        server_started = cpu_now(server) if server is not None else None
        client_started, started = cpu_now(os.getpid()), time.perf_counter()
        result = await client.call_tool("think_while_edit", arguments, progress_callback=progress)
        seconds = time.perf_counter() - started
        if timed and server is not None:
            cpu.add("client", client_started, cpu_now(os.getpid()))
            cpu.add("server", server_started, cpu_now(server))
        out = result.structured_content
        assert out["status"] == "done" and len(out["rounds"]) == max_rounds, result
        same.check("mcp", [out["source_image"]["sha256"], *(r["image"]["sha256"] for r in out["rounds"]),
                           *(c["image"]["sha256"] for r in out["rounds"] for c in r["candidates"])])
        return seconds

    times: dict[str, list[float]] = {side: [] for side in SIDES}
    try:
        async with Runner.open(dirs["direct"]) as runner:
            warm = photos.fresh(IMAGE), photos.seed()  # warm-ups build and load the tiny models, not timed
            await one_direct(runner, *warm, timed=False)
            await one_twin(*warm, timed=False)
            started = time.perf_counter()
            with open(os.devnull, "w") as errlog:
                async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
                    startup = time.perf_counter() - started
                    server = server_pid()
                    await one_mcp(client, server, *warm, timed=False)
                    same.settle()
                    sides: dict[str, Callable[[Path, int], Awaitable[float]]] = {
                        "direct": lambda photo, seed: one_direct(runner, photo, seed),
                        "mcp": lambda photo, seed: one_mcp(client, server, photo, seed),
                        "twin": one_twin,
                    }
                    for index in range(runs):
                        photo, seed = photos.fresh(IMAGE), photos.seed()
                        for side in SIDES[index % 3:] + SIDES[: index % 3]:
                            times[side].append(await sides[side](photo, seed))
                        same.settle()
    finally:
        if twin.stdin is not None:
            twin.stdin.close()
        await twin.wait()
    return times["direct"], times["mcp"], times["twin"], startup


#: The three sides, each with a data directory (and so an artifact store) of its own.
SIDES = ("direct", "mcp", "twin")


class SameWork:
    """Check that each side's runs store only new images, and that the sides of one pair store the same ones.

    The same images mean the same work: the same photo and seed, the same thinker answers. Each
    side's store is its own, so its images are new to it although another side stored them first.
    """

    def __init__(self) -> None:
        self.stored: dict[str, set[str]] = {side: set() for side in SIDES}
        self.pair: dict[str, list[str]] = {}

    def check(self, side: str, digests: list[str]) -> None:
        """Fail unless ``side`` stored only images new to its store; keep them for the pair's comparison."""
        new = set(digests)
        assert not new & self.stored[side], f"a {side} run stored an image its store had: it would skip encoding"
        self.stored[side] |= new
        self.pair[side] = sorted(digests)

    def settle(self) -> None:
        """Fail unless every side of the pair just run stored the same images; start the next pair."""
        assert len(self.pair) == len(SIDES), f"a pair ran only {sorted(self.pair)}"
        first, *others = self.pair.values()
        assert all(digests == first for digests in others), "the sides of a pair did different work"
        self.pair = {}


async def serve_twin(data_dir: Path, profile: Path, max_rounds: int) -> None:
    """Be the twin: run each photo and seed read from stdin through ``start_run``, as ``one_direct`` does.

    Answers one JSON line per run (the seconds ``start_run`` timed, the stored images' digests).
    """
    from thinkedit.agent.runs import Runner
    from thinkedit.agent.settings import LoopSettings

    settings = LoopSettings.from_profile(str(profile), data_dir=str(data_dir), max_rounds=max_rounds, seed=0)
    loop = asyncio.get_running_loop()
    async with Runner.open(data_dir) as runner:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            asked = json.loads(line)
            seconds, state = await start_run(runner, Path(asked["photo"]), settings, asked["seed"])
            sys.stdout.write(json.dumps({"seconds": seconds, "digests": Photos.digests(state)}) + "\n")
            sys.stdout.flush()


async def start_run(runner: Runner, photo: Path, settings: LoopSettings, seed: int) -> tuple[float, RunState]:
    """Run ``photo`` through ``Runner.prepare`` and ``Runner.start`` as a direct user does; return seconds and state.

    The direct side and the twin both time their runs here, so they time the same steps.
    """
    fresh = settings.model_copy(update={"seed": seed})
    started = time.perf_counter()
    state = await runner.start(runner.prepare(photo, INSTRUCTION, fresh), on_event=lambda event: None)
    seconds = time.perf_counter() - started
    assert state is not None and state.status == "done" and len(state.rounds) == settings.max_rounds, state
    return seconds, state


def prime_torch() -> None:
    """Start torch's parallel runtime on this (the main) thread, as the CLI and the server do before their runs."""
    from thinkedit.agent.settings import LoopSettings
    from thinkedit.tools.registry import prime_in_process_runtime

    tiny = LoopSettings.from_profile("tiny")
    prime_in_process_runtime(tiny.editor, tiny.thinker)


def figures(runs: int = 10, max_rounds: int = 2) -> dict[str, Any]:
    """Time the three sides in a scratch data directory; return the spreads, the per-pair ratios and the start-up."""
    prime_torch()
    cpu = CpuTimes()
    with tempfile.TemporaryDirectory() as tmp, Pressure() as pressure:
        direct_times, mcp_times, twin_times, startup = asyncio.run(measure(Path(tmp), runs, max_rounds, cpu))
    d, m = statistics.median(direct_times), statistics.median(mcp_times)
    return {"direct_s": d, "mcp_s": m, "twin_s": statistics.median(twin_times), "direct": spread(direct_times),
            "mcp": spread(mcp_times), "mcp_over_direct": pair_ratios(mcp_times, direct_times),
            "twin_over_direct": pair_ratios(twin_times, direct_times), "startup_s": startup,
            "cpu_text": cpu_text(means, runs) if (means := cpu.means_ms()) is not None else None,
            "pressure": pressure.text()}


def main() -> None:
    """Run the three sides and print the ratios (or, with --twin, be the second process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="Timed runs per path (after one warm-up).")
    parser.add_argument("--max-rounds", type=int, default=2)
    parser.add_argument("--twin", nargs=3, metavar=("DATA_DIR", "PROFILE", "MAX_ROUNDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.twin:  # the second process of the floor, fed by ``measure``
        prime_torch()
        asyncio.run(serve_twin(Path(args.twin[0]), Path(args.twin[1]), int(args.twin[2])))
        return
    f = figures(args.runs, args.max_rounds)
    d, m = f["direct_s"], f["mcp_s"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}")
    print(f"tiny profile, max_rounds {args.max_rounds}, {args.runs} timed runs per path (medians)")
    print(f"direct (start_run)  : {d * 1000:8.1f} ms")
    print(f"MCP stdio tool call : {m * 1000:8.1f} ms   (server start-up, once: {f['startup_s']:.2f} s)")
    print(f"second process      : {f['twin_s'] * 1000:8.1f} ms   (the same direct run in a twin process: the floor)")
    ratio, floor = f["mcp_over_direct"], f["twin_over_direct"]
    print(f"MCP stdio ÷ direct  : {ratio.text()}, median within {ratio.interval()}   "
          f"(overhead {1000 * (m - d):.1f} ms per run)")
    print(f"second process ÷ direct: {floor.text()}, median within {floor.interval()}")
    if f["cpu_text"] is not None:
        print(f"CPU time per run   : {f['cpu_text']}")
    print(f["pressure"])


def cpu_text(cpu_ms: dict[str, float], runs: int) -> str:
    """Say how much CPU each path spends per run, and how much of it on the event loop's thread (means)."""
    return (f"direct {cpu_ms['direct']:.0f} ms ({cpu_ms['direct_loop']:.0f} on the event loop's thread); "
            f"MCP {cpu_ms['server']:.0f} ms in the server ({cpu_ms['server_loop']:.0f} on its event loop's "
            f"thread) + {cpu_ms['client']:.0f} ms in the client; the same direct run in a second process "
            f"{cpu_ms['twin']:.0f} ms ({cpu_ms['twin_loop']:.0f} on its event loop's thread) (means of {runs} runs)")


if __name__ == "__main__":
    main()
