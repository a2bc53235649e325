"""Load-test the served stack on loopback: N concurrent tiny runs through MCP HTTP against 2 editor replicas.

    PYTHONPATH=. python bench/load.py [--runs 32] [--max-rounds 2] [--editor-backend ray|uvicorn] [--json FILE]

Each run is a ``think_while_edit`` call in its own MCP client session; the MCP server runs the
thinker in-process and sends edits to an editor server (Ray Serve, 2 replicas; uvicorn when Ray
cannot start). Afterwards every (image, instruction, seed) is run again alone, and the two results
are compared round by round: no cross-talk means the same trajectory and the same images. The
editor batches concurrent requests, and a batched edit may differ from a solo one by float rounding
(tests/test_ray_serve.py), so an image counts as the same when its SHA-256 matches or its pixels
differ by at most ``PIXEL_TOLERANCE`` levels. Prints throughput and each process's peak memory.
Bounded: ``--runs`` runs, ``--timeout`` seconds in all; traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.editor_server import free_port, start_server  # noqa: E402
from tests.bench_support import procmem  # noqa: E402
from tests.bench_support.photos import IMAGE  # noqa: E402

log = logging.getLogger("bench.load")

PIXEL_TOLERANCE = 3  # levels of 255; the editor team's bound for batched vs solo outputs
INSTRUCTIONS = ("put a red party hat on the cat", "make the sky purple", "add sunglasses", "turn it into a sketch")


@dataclass(frozen=True)
class Job:
    """Say what one run edits: the instruction and seed that make it distinct."""

    index: int
    instruction: str
    seed: int


@dataclass
class Outcome:
    """Keep what a finished run returned that the comparison needs."""

    job: Job
    status: str
    seconds: float
    rounds: list[dict[str, Any]]
    final: dict[str, Any] | None
    error: str | None = None


@dataclass
class LoadReport:
    """Carry the load test's figures: completion, cross-talk check, throughput, peak memory."""

    runs: int
    completed: int
    editor_backend: str
    replicas_seen: int
    burst_seconds: float
    runs_per_minute: float
    exact: int
    within_tolerance: int
    largest_level_difference: int
    mismatches: list[str]
    peak_mib: list[tuple[str, float]] = field(default_factory=list)
    replica_ids: list[str] = field(default_factory=list)  # as each answering replica named itself


def make_jobs(count: int) -> list[Job]:
    """Return ``count`` distinct runs (instructions cycle, every seed differs)."""
    return [Job(i, INSTRUCTIONS[i % len(INSTRUCTIONS)], seed=i) for i in range(count)]


@contextlib.asynccontextmanager
async def mcp_session(base: str) -> AsyncIterator[Any]:
    """Open one MCP client session over streamable HTTP (as tests/mcp_support.py does)."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async with create_mcp_http_client() as http:
        async with Client(streamable_http_client(f"{base}/mcp", http_client=http), read_timeout_seconds=600) as client:
            yield client


async def run_one(base: str, job: Job, max_rounds: int, wait: float = 300) -> Outcome:
    """Run ``job`` as ``think_while_edit`` in its own session, following it with get_run until it ends."""
    started = time.perf_counter()
    arguments = {"image": str(IMAGE), "instruction": job.instruction, "seed": job.seed,
                 "max_rounds": max_rounds, "wait_seconds": wait}
    async with mcp_session(base) as client:
        result = await client.call_tool("think_while_edit", arguments)
        while not result.is_error and result.structured_content["status"] == "running":
            run_id = result.structured_content["run_id"]
            result = await client.call_tool("get_run", {"run_id": run_id, "wait_seconds": wait})
    seconds = time.perf_counter() - started
    if result.is_error:
        text = " ".join(b.text for b in result.content if b.type == "text")
        return Outcome(job, "error", seconds, [], None, error=text)
    run = result.structured_content
    return Outcome(job, run["status"], seconds, run["rounds"], run.get("final_image"), error=run.get("error"))


def level_difference(a: dict[str, Any], b: dict[str, Any]) -> int:
    """Return the largest per-pixel difference (0-255) of two ImageInfo dicts' PNGs; 256 when sizes differ."""
    if a["sha256"] == b["sha256"]:
        return 0
    x = np.asarray(Image.open(a["path"]).convert("RGB"), dtype=np.int16)
    y = np.asarray(Image.open(b["path"]).convert("RGB"), dtype=np.int16)
    return int(np.abs(x - y).max()) if x.shape == y.shape else 256


def compare(loaded: Outcome, alone: Outcome) -> tuple[str | None, int, str]:
    """Compare a concurrent run with its solo run: ('exact'|'tolerance'|None, largest level difference, why)."""
    if loaded.status != "done" or alone.status != "done":
        return None, 0, f"status {loaded.status} vs {alone.status} ({loaded.error or alone.error})"
    if len(loaded.rounds) != len(alone.rounds):
        return None, 0, f"{len(loaded.rounds)} rounds vs {len(alone.rounds)}"
    for r, s in zip(loaded.rounds, alone.rounds):
        for key in ("instruction", "seed", "refined_instruction"):
            if r[key] != s[key]:
                return None, 0, f"round {r['index']} {key}: {r[key]!r} vs {s[key]!r}"
    assert loaded.final is not None and alone.final is not None
    pairs = [(r["image"], s["image"]) for r, s in zip(loaded.rounds, alone.rounds)] + [(loaded.final, alone.final)]
    worst = max(level_difference(a, b) for a, b in pairs)
    if worst > PIXEL_TOLERANCE:
        return None, worst, f"images differ by up to {worst} levels (tolerance {PIXEL_TOLERANCE})"
    return ("exact" if worst == 0 else "tolerance"), worst, ""


@contextlib.contextmanager
def editor_server(
    backend: str, replicas: int, data_dir: str, logs: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], str]]:
    """Start the editor (Ray Serve with ``replicas``; uvicorn if asked or Ray fails); yield URL, process, backend."""
    proc = None
    if backend == "ray":
        try:
            proc, url = start_server("tiny-kontext", 8, data_dir, logs / "editor-ray.log",
                                     ["--ray", "--replicas", str(replicas)], timeout=240)
        except SystemExit as exc:
            log.warning("Ray Serve did not start (%s); falling back to uvicorn", exc)
            backend = "uvicorn"
    if proc is None:
        proc, url = start_server("tiny-kontext", 8, data_dir, logs / "editor-uvicorn.log")
    try:
        yield url, proc, backend
    finally:
        proc.terminate()
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextlib.contextmanager
def mcp_server(editor_url: str, data_dir: str, logs: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start ``thinkedit serve mcp --transport http`` (tiny thinker in-process) against ``editor_url``."""
    import httpx

    from tests.mcp_support import server_env, stop, wait_ready  # the tests' way of starting it

    port = free_port()
    cmd = [sys.executable, "-m", "thinkedit.servers.cli", "serve", "mcp", "--transport", "http", "--host", "127.0.0.1",
           "--port", str(port), "--profile", "tiny", "--editor", editor_url,
           "--allow-root", str(ROOT)]
    with open(logs / "mcp.log", "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=server_env(Path(data_dir)), stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, timeout=180)
        assert httpx.get(f"{base}/health", timeout=5).status_code == 200
        yield base, proc
    finally:
        stop(proc)


async def replicas_answering(editor_url: str, want: int, timeout: float = 120) -> set[str]:
    """Send bursts of edits until ``want`` replicas have answered (the second may still be loading); return their ids."""
    import io

    import openai

    client = openai.AsyncOpenAI(base_url=editor_url, api_key="unused", max_retries=2)
    buf = io.BytesIO()
    Image.new("RGB", (48, 48), (200, 120, 40)).save(buf, format="PNG")
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(seen) < want:
        answers = await asyncio.gather(*(
            client.images.with_raw_response.edit(image=("a.png", buf.getvalue(), "image/png"), prompt="x",
                                                 extra_body={"seed": 1})
            for _ in range(8)
        ))
        seen |= {a.headers.get("x-thinkedit-replica", "") for a in answers} - {""}
        await asyncio.sleep(0.2)
    return seen


async def load_test(runs: int = 32, max_rounds: int = 2, editor_backend: str = "ray", replicas: int = 2,
                    data_dir: str | None = None, timeout: float = 900) -> LoadReport:
    """Run ``runs`` concurrent runs, then each alone, compare them, and measure throughput and peak memory."""
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="thinkedit-load-"))
        logs = Path(tmp)
        data = data_dir or tmp
        url, editor_proc, backend = stack.enter_context(editor_server(editor_backend, replicas, data, logs))
        seen = await replicas_answering(url, replicas if backend == "ray" else 1)
        base, mcp_proc = stack.enter_context(mcp_server(url, data, logs))
        jobs = make_jobs(runs)

        async def bounded() -> tuple[float, list[Outcome], list[Outcome]]:
            await run_one(base, Job(-1, "warm up", 12345), 1)  # loads the thinker; not timed
            started = time.perf_counter()
            loaded = await asyncio.gather(*(run_one(base, job, max_rounds) for job in jobs))
            burst = time.perf_counter() - started
            alone = [await run_one(base, job, max_rounds) for job in jobs]  # one at a time: no batching
            return burst, loaded, alone

        burst, loaded, alone = await asyncio.wait_for(bounded(), timeout)
        peaks = [*procmem.tree_peaks(mcp_proc.pid, "MCP server"), *procmem.tree_peaks(editor_proc.pid, "editor server"),
                 ("load client (this process)", procmem.self_peak_mib())]
        verdicts = [(a, *compare(a, b)) for a, b in zip(loaded, alone)]  # reads the PNGs: before tmp goes
    exact = sum(kind == "exact" for _, kind, _, _ in verdicts)
    within = sum(kind == "tolerance" for _, kind, _, _ in verdicts)
    largest = max((diff for _, _, diff, _ in verdicts), default=0)
    mismatches = [f"run {a.job.index} ({a.job.instruction!r}, seed {a.job.seed}): {why}"
                  for a, kind, _, why in verdicts if kind is None]
    completed = sum(o.status == "done" for o in loaded)
    return LoadReport(runs, completed, backend, len(seen), burst, 60 * runs / burst, exact, within, largest, mismatches,
                      peaks, sorted(seen))


def print_report(report: LoadReport) -> None:
    """Print the load test's figures as a small table."""
    print(f"editor: {report.editor_backend} ({report.replicas_seen} replica(s) answered); "
          f"{report.runs} concurrent tiny runs through MCP HTTP")
    print(f"completed            : {report.completed}/{report.runs}")
    print(f"same as solo run     : {report.exact} exact, {report.within_tolerance} within {PIXEL_TOLERANCE} levels, "
          f"{len(report.mismatches)} different (largest pixel difference {report.largest_level_difference})")
    for line in report.mismatches:
        print(f"  {line}")
    print(f"burst wall time      : {report.burst_seconds:.1f} s -> {report.runs_per_minute:.0f} runs/min")
    print("peak memory (max RSS):")
    for label, mib in report.peak_mib:
        print(f"  {label:<44} {mib:8.0f} MiB")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, run the load test, print it; exit 1 if a run failed or differed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=32, help="Concurrent runs (default 32).")
    parser.add_argument("--max-rounds", type=int, default=2, help="Rounds per run (default 2).")
    parser.add_argument("--editor-backend", choices=["ray", "uvicorn"], default="ray")
    parser.add_argument("--replicas", type=int, default=2, help="Ray Serve replicas (default 2).")
    parser.add_argument("--timeout", type=float, default=900, help="Give up after this many seconds of runs.")
    parser.add_argument("--data-dir", help="Where the tiny models are built (default: a temporary directory).")
    parser.add_argument("--json", type=Path, help="Also write the figures to this JSON file.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    report = asyncio.run(load_test(args.runs, args.max_rounds, args.editor_backend, args.replicas, args.data_dir,
                                   args.timeout))
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(dataclasses.asdict(report), indent=2), "utf-8")
    return 0 if report.completed == report.runs and not report.mismatches else 1


if __name__ == "__main__":
    raise SystemExit(main())
