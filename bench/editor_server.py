"""Measure what the editor server costs and what batching buys, as ratios taken side by side in one run.

(a) per-edit latency through the server (openai SDK over loopback) ÷ the same edit in-process;
(b) throughput of 8 concurrent clients with micro-batching on ÷ off (two servers, alternated).

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

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from thinkedit.tools.config import EditorConfig  # noqa: E402
from thinkedit.tools.editors.openai_images import OpenAIImagesEditor  # noqa: E402
from thinkedit.tools.types import EditRequest  # noqa: E402


def free_port() -> int:
    """Return a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    model: str, max_batch: int, data_dir: str, log: Path, extra: Sequence[str] = (), timeout: float = 180
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``thinkedit serve editor`` on a free loopback port; return it and its /v1 URL once ready."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "THINKEDIT_DATA_DIR": data_dir, "RAY_USAGE_STATS_ENABLED": "0"}
    command = [sys.executable, "-m", "thinkedit.servers.cli", "serve", "editor", "--model", model, "--port", str(port),
               "--max-batch", str(max_batch), "--max-queue", "256", *extra]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc, f"http://127.0.0.1:{port}/v1"
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server not ready; see {log}")


async def sequential_latency(editor: object, image: Image.Image, count: int) -> float:
    """Return the median seconds of ``count`` edits made one after another."""
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


async def measure(args: argparse.Namespace, data_dir: str, logs: Path) -> dict[str, float]:
    """Measure both ratios; return the medians (seconds, edits/s) and the ratios."""
    from thinkedit.tools.editors.diffusers_engine import DiffusersEditor
    from thinkedit.tools.torchutil import start_parallel_runtime

    start_parallel_runtime()  # the in-process engine gets the same start as the servers

    image = Image.open(ROOT / "examples" / "chelsea.png").convert("RGB").resize((args.size, args.size))
    settings = {"num_inference_steps": args.steps}
    local = DiffusersEditor(EditorConfig(model=args.model, settings=settings), data_dir=data_dir)
    await asyncio.to_thread(local.load)
    batched, batched_url = start_server(args.model, 8, data_dir, logs / "batched.log")
    single, single_url = start_server(args.model, 1, data_dir, logs / "single.log")
    try:
        remote = OpenAIImagesEditor(
            EditorConfig(backend="openai-images", model=args.model, base_url=batched_url, settings=settings)
        )
        for editor in (local, remote):  # warm both up (first calls pay one-off kernel setup)
            await sequential_latency(editor, image, 3)
        in_process, served = [], []
        for _ in range(args.rounds):  # alternate, so drift in machine load hits both alike
            in_process.append(await sequential_latency(local, image, args.edits))
            served.append(await sequential_latency(remote, image, args.edits))
        urls = {"on": batched_url, "off": single_url}
        for url in urls.values():
            await concurrent_throughput(url, args.model, settings, image, args.clients, 2)
        rates: dict[str, list[float]] = {"on": [], "off": []}
        for _ in range(args.rounds):
            for mode, url in urls.items():
                rates[mode].append(
                    await concurrent_throughput(url, args.model, settings, image, args.clients, args.each)
                )
    finally:
        for proc in (batched, single):
            proc.terminate()
            proc.wait(30)
    lat_local, lat_server = statistics.median(in_process), statistics.median(served)
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    return {"in_process_s": lat_local, "server_s": lat_server, "server_over_in_process": lat_server / lat_local,
            "batching_on_per_s": on, "batching_off_per_s": off, "on_over_off": on / off}


def options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the options (the defaults are what run_all.py measures)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-kontext")
    parser.add_argument("--size", type=int, default=128, help="Square input side in pixels (default 128).")
    parser.add_argument("--steps", type=int, default=4, help="Denoising steps (default 4).")
    parser.add_argument("--edits", type=int, default=15, help="Sequential edits per latency sample.")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent clients (default 8).")
    parser.add_argument("--each", type=int, default=6, help="Edits per client per throughput sample.")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating samples of each measurement.")
    parser.add_argument("--data-dir", help="Where the tiny models are built (default: a temporary directory).")
    return parser.parse_args(argv)


def figures(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Run the benchmark with ``argv``'s options in a scratch directory; return its figures."""
    args = options(argv)
    with tempfile.TemporaryDirectory(prefix="thinkedit-bench-") as tmp:
        return asyncio.run(measure(args, args.data_dir or tmp, Path(tmp)))


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print both ratios."""
    args = options(argv)
    f = figures(argv)
    lat_local, lat_server = f["in_process_s"], f["server_s"]
    on, off = f["batching_on_per_s"], f["batching_off_per_s"]
    print(f"model {args.model}, {args.size}x{args.size} input, {args.steps} steps, {os.cpu_count()} CPU cores")
    print(f"(a) per-edit latency: in-process {lat_local * 1000:.1f} ms, server {lat_server * 1000:.1f} ms"
          f" -> server / in-process = {lat_server / lat_local:.2f}")
    print(f"(b) {args.clients} concurrent clients: batching on {on:.1f} edits/s, off {off:.1f} edits/s"
          f" -> on / off = {on / off:.2f}")


if __name__ == "__main__":
    main()
