"""Measure what the editor server costs and what batching buys, as ratios taken side by side in one run.

(a) per-edit latency through the server (openai SDK over loopback) ÷ the same edit in-process;
(b) per-edit latency through our server ÷ through a server built the way the paper's is
    (``bench/paper_server.py``: FastAPI + one worker process per device, pipeline on its main thread);
(c) throughput of 8 concurrent clients with micro-batching on ÷ off (two servers, alternated).
Each ratio is the median of per-pair ratios (the sides measured back to back) with its IQR, and the
run's CPU pressure (PSI) is reported with it.

    PYTHONPATH=. python bench/editor_server.py [--model tiny-kontext] [--size 128] [--steps 4]

Runs offline with the tiny models; the numbers say how much the serving layer adds and what
batching gains for small edits on this machine, not how fast real models are.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bench_support.spread import Pressure, pair_ratios, spread  # noqa: E402
from thinkedit.tools.config import EditorConfig  # noqa: E402
from thinkedit.tools.editors.openai_images import OpenAIImagesEditor  # noqa: E402
from thinkedit.tools.types import EditRequest  # noqa: E402


def free_port() -> int:
    """Return a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    model: str, max_batch: int, data_dir: str, log: Path, extra: Sequence[str] = (), timeout: float = 180,
    paper: bool = False, tries: int = 3,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``thinkedit serve editor`` (or, with ``paper``, the baseline) on a free loopback port; return it and its URL.

    A port is free when it is chosen and another program may bind it before the server does: a server
    that exits because its port was taken is started again on another, up to ``tries`` times.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "THINKEDIT_DATA_DIR": data_dir, "RAY_USAGE_STATS_ENABLED": "0"}
    for _ in range(tries):
        port = free_port()
        command = [sys.executable, "-m", "thinkedit.servers.cli", "serve", "editor", "--model", model, "--port",
                   str(port), "--max-batch", str(max_batch), "--max-queue", "256", *extra]
        if paper:
            command = [sys.executable, str(ROOT / "bench" / "paper_server.py"), "--model", model, "--port", str(port)]
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        if _ready(proc, port, time.monotonic() + timeout):
            return proc, f"http://127.0.0.1:{port}/v1"
        if proc.poll() is None:
            proc.kill()
            raise SystemExit(f"server not ready; see {log}")
        if "address already in use" not in log.read_text(errors="replace").lower():
            raise SystemExit(f"server exited early; see {log}")
    raise SystemExit(f"{tries} free ports were taken before the server bound them; see {log}")


def _ready(proc: subprocess.Popen[bytes], port: int, deadline: float) -> bool:
    """Wait until the server answers ``/health``; False if it exits first or the deadline passes."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


async def sequential_latency(editor: object, image: Image.Image, count: int, settle: int = 0) -> float:
    """Return the median seconds of ``count`` edits made one after another (after ``settle`` untimed ones).

    The untimed edits let the side before this one go quiet (its threads stop spinning, its caches
    cool) so that no side pays for the one measured before it.
    """
    for seed in range(settle):
        await editor.edit(EditRequest(image=image, instruction="add a red hat", seed=10_000 + seed))  # type: ignore[attr-defined]
    seconds = []
    for seed in range(count):
        started = time.perf_counter()
        await editor.edit(EditRequest(image=image, instruction="add a red hat", seed=seed))  # type: ignore[attr-defined]
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


async def concurrent_throughput(
    url: str, model: str, settings: dict[str, int], image: Image.Image, clients: int, each: int
) -> float:
    """Return edits per second when ``clients`` clients each send ``each`` edits back to back."""
    editor = OpenAIImagesEditor(EditorConfig(backend="openai-images", model=model, base_url=url, settings=settings))

    async def client(index: int) -> None:
        for k in range(each):
            await editor.edit(EditRequest(image=image, instruction="add a red hat", seed=index * 1000 + k))

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return clients * each / (time.perf_counter() - started)


async def measure(args: argparse.Namespace, data_dir: str, logs: Path) -> dict[str, Any]:
    """Measure the three ratios as pairs; return the spreads and the run's CPU pressure."""
    from thinkedit.tools.editors.diffusers_engine import DiffusersEditor
    from thinkedit.tools.registry import start_parallel_runtime

    start_parallel_runtime()  # the in-process engine gets the same start as a server's pipeline

    image = Image.open(ROOT / "examples" / "chelsea.png").convert("RGB").resize((args.size, args.size))
    settings = {"num_inference_steps": args.steps}
    local = DiffusersEditor(EditorConfig(model=args.model, settings=settings), data_dir=data_dir)
    await asyncio.to_thread(local.load)
    batched, batched_url = start_server(args.model, 8, data_dir, logs / "batched.log")
    single, single_url = start_server(args.model, 1, data_dir, logs / "single.log")
    paper, paper_url = start_server(args.model, 1, data_dir, logs / "paper.log", paper=True)
    try:
        def client(url: str) -> OpenAIImagesEditor:
            return OpenAIImagesEditor(EditorConfig(backend="openai-images", model=args.model, base_url=url,
                                                   settings=settings))

        ours, theirs = client(batched_url), client(paper_url)
        for editor in (local, ours, theirs):  # warm all up (first calls pay one-off kernel setup)
            await sequential_latency(editor, image, 3)
        with Pressure() as pressure:
            samples: dict[str, list[float]] = {"in_process": [], "served": [], "baseline": []}
            sides = [("in_process", local), ("served", ours), ("baseline", theirs)]
            for index in range(args.rounds):  # alternate, so drift in machine load hits every side alike,
                for name, editor in sides[index % 3:] + sides[:index % 3]:  # each side first, middle, last in turn
                    samples[name].append(await sequential_latency(editor, image, args.edits, settle=1))
            in_process, served, baseline = samples["in_process"], samples["served"], samples["baseline"]
            urls = {"on": batched_url, "off": single_url}
            for url in urls.values():
                await concurrent_throughput(url, args.model, settings, image, args.clients, 2)
            rates: dict[str, list[float]] = {"on": [], "off": []}
            for index in range(args.rounds):
                for mode, url in urls.items() if index % 2 == 0 else reversed(urls.items()):
                    rates[mode].append(
                        await concurrent_throughput(url, args.model, settings, image, args.clients, args.each)
                    )
    finally:
        for proc in (batched, single, paper):
            proc.terminate()
            proc.wait(30)
    return {"in_process": spread(in_process), "server": spread(served), "paper": spread(baseline),
            "server_over_in_process": pair_ratios(served, in_process), "server_over_paper": pair_ratios(served, baseline),
            "batching_on": spread(rates["on"]), "batching_off": spread(rates["off"]),
            "on_over_off": pair_ratios(rates["on"], rates["off"]), "pressure": pressure.text()}


def options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the options (the defaults are what run_all.py measures)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-kontext")
    parser.add_argument("--size", type=int, default=128, help="Square input side in pixels (default 128).")
    parser.add_argument("--steps", type=int, default=4, help="Denoising steps (default 4).")
    parser.add_argument("--edits", type=int, default=15, help="Sequential edits per latency sample.")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent clients (default 8).")
    parser.add_argument("--each", type=int, default=6, help="Edits per client per throughput sample.")
    parser.add_argument("--rounds", type=int, default=7, help="Alternating samples of each measurement (default 7).")
    parser.add_argument("--data-dir", help="Where the tiny models are built (default: a temporary directory).")
    return parser.parse_args(argv)


def figures(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark with ``argv``'s options in a scratch directory; return its figures."""
    args = options(argv)
    with tempfile.TemporaryDirectory(prefix="thinkedit-bench-") as tmp:
        return asyncio.run(measure(args, args.data_dir or tmp, Path(tmp)))


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the ratios with their spread."""
    args = options(argv)
    f = figures(argv)
    print(f"model {args.model}, {args.size}x{args.size} input, {args.steps} steps, {os.cpu_count()} CPU cores")
    print(f"(a) per edit: in-process {f['in_process'].text(1, 1000, ' ms')}, server {f['server'].text(1, 1000, ' ms')}"
          f" -> server ÷ in-process = {f['server_over_in_process'].text()}")
    print(f"(b) per edit: paper-style server {f['paper'].text(1, 1000, ' ms')}"
          f" -> ours ÷ paper's design = {f['server_over_paper'].text()}")
    print(f"(c) {args.clients} concurrent clients: batching on {f['batching_on'].text(1)} edits/s, off "
          f"{f['batching_off'].text(1)} edits/s -> on ÷ off = {f['on_over_off'].text()}")
    print(f["pressure"])


if __name__ == "__main__":
    main()
