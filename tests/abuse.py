"""Abuse the served stack on loopback and count what held: malformed uploads, bombs, auth, traversal, races.

    .venv/bin/python -m tests.abuse [--areas uploads,bombs,auth,slow,traversal,urls,loop,runs] [--timeout 900]

Starts real servers on 127.0.0.1 (``thinkedit serve editor`` for tiny-kontext, with and without a
token; ``thinkedit serve mcp --transport http`` with and without ``--allow-urls``) and real CLI
processes, throws each area's cases at them and prints, per area, how many were tried, how many
held (a clear 4xx or tool error naming the problem, the server still healthy, nothing leaked or
redone) and how many failed. Bounded: a fixed list of cases, ``--timeout`` seconds in all; every
request goes to 127.0.0.1. ``tests/test_abuse.py`` runs the fast areas and asserts zero failures;
the cases behind each hole also have their own tests (tests/test_hardening_*.py, test_run_lock.py).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.abuse_support import (
    SMALL,
    TOKEN,
    Report,
    clear_error,
    env_for,
    healthy,
    lying_png,
    metric,
    png,
    server,
    upload_cases,
)
from tests.procs import ROOT
from tests.races import swapping_for_symlink

AREAS = ("uploads", "bombs", "auth", "slow", "traversal", "urls", "loop", "runs")
FAST_AREAS = ("uploads", "bombs", "auth", "slow", "traversal", "urls")


def run_uploads(report: Report, base: str) -> None:
    for name, kwargs, statuses in upload_cases():
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        method = kwargs.pop("method", "POST")
        try:
            response = httpx.request(method, f"{base}/v1/images/edits", timeout=60, **kwargs)
            ok, detail = clear_error(response, statuses)
        except httpx.HTTPError as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        report.check("uploads", name, ok and healthy(base), detail)


def run_bombs(report: Report, base: str) -> None:
    cases = [
        ("lying header 100000x100000", {"image": ("a.png", lying_png(100_000, 100_000), "image/png")}, {}, (413,)),
        ("4200x4200 (17 KB)", {"image": ("a.png", png(Image.new("RGB", (4200, 4200))), "image/png")}, {}, (413,)),
        ("n=8 at 4096x4096", {"image": ("a.png", SMALL, "image/png")}, {"n": "8", "size": "4096x4096"}, (413,)),
        ("2048x2048 input at one step", {"image": ("a.png", png(Image.new("RGB", (2048, 2048))), "image/png")},
         {"num_inference_steps": "1"}, (413,)),
        ("body over the upload limit", {"image": ("a.bin", os.urandom(21 * 1024 * 1024), "image/png")}, {}, (413,)),
    ]
    for name, files, fields, statuses in cases:
        started = time.perf_counter()
        try:
            response = httpx.post(f"{base}/v1/images/edits", files=files, data={"prompt": "x", **fields}, timeout=120)
            ok, detail = clear_error(response, statuses)
        except httpx.HTTPError as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - started
        report.check("bombs", name, ok and healthy(base), detail)
        report.figure("bombs", f"{name}: refused in {seconds:.2f} s")


def run_auth(report: Report, base: str, token_base: str, mcp_token_base: str) -> None:
    models = f"{token_base}/v1/models"
    for name, headers in (("no token", {}), ("wrong token", {"Authorization": "Bearer nope"}),
                          ("basic scheme", {"Authorization": f"Basic {TOKEN}"}),
                          ("token without scheme", {"Authorization": TOKEN})):
        response = httpx.get(models, headers=headers, timeout=30)
        report.check("auth", f"editor: {name}", response.status_code == 401, f"HTTP {response.status_code}")
    right = httpx.get(models, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    report.check("auth", "editor: right token", right.status_code == 200, f"HTTP {right.status_code}")
    rebound = httpx.get(f"{base}/v1/models", headers={"Host": "evil.example"}, timeout=30)
    report.check("auth", "editor: DNS-rebound Host", rebound.status_code == 421, f"HTTP {rebound.status_code}")
    for origin in ("https://evil.example", "null", "http://127.0.0.1.evil.example"):
        page = httpx.post(f"{base}/v1/images/edits", headers={"Origin": origin}, timeout=30,
                          files={"image": ("a.png", SMALL, "image/png")}, data={"prompt": "x"})
        report.check("auth", f"editor: web page at {origin}", page.status_code == 403, f"HTTP {page.status_code}")
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    for name, extra in (("no token", {}), ("wrong token", {"Authorization": "Bearer nope"})):
        response = httpx.post(f"{mcp_token_base}/mcp", json=body, headers={**headers, **extra}, timeout=30)
        report.check("auth", f"mcp: {name}", response.status_code == 401, f"HTTP {response.status_code}")


def _raw(base: str, data: bytes, wait: float = 30.0) -> bytes:
    """Send ``data`` on a fresh connection; return what comes back before the server closes it."""
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        chunks = []
        with contextlib.suppress(TimeoutError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def run_slow(report: Report, base: str, log: Path) -> None:
    port = base.rsplit(":", 1)[1]
    started = time.perf_counter()
    answer = _raw(base, b"POST /v1/images/edits HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    report.check("slow", "headers never finished", answer == b"", repr(answer[:80]))
    report.figure("slow", f"unfinished headers: connection closed after {time.perf_counter() - started:.1f} s")
    head = (f"POST /v1/images/edits HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n").encode()
    started = time.perf_counter()
    answer = _raw(base, head + b"--b\r\n")
    report.check("slow", "body stalls", answer.startswith(b"HTTP/1.1 408"), repr(answer[:80]))
    report.figure("slow", f"stalled body: 408 after {time.perf_counter() - started:.1f} s")
    before = metric(base, "disconnected")
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as sock:
            sock.sendall(head + b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n' + b"x" * 4000)
            time.sleep(0.05)
    for _ in range(100):
        if metric(base, "disconnected") >= before + 20:
            break
        time.sleep(0.1)
    counted = metric(base, "disconnected") - before
    quiet = "ClientDisconnect" not in log.read_text(errors="replace")
    report.check("slow", "20 abandoned uploads counted, no tracebacks", counted == 20 and quiet,
                 f"counted {counted:g}, tracebacks in log: {not quiet}")
    report.check("slow", "server healthy after slow clients", healthy(base))


# --- MCP areas -------------------------------------------------------------------------------------


async def call(base: str, tool: str, arguments: dict[str, Any]) -> Any:
    """Call one tool in a fresh MCP client session over streamable HTTP."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with Client(streamable_http_client(f"{base}/mcp"), read_timeout_seconds=300) as client:
        return await client.call_tool(tool, arguments)


def tool_error(result: Any) -> str:
    return " ".join(b.text for b in result.content if b.type == "text") if result.is_error else ""


async def run_traversal(report: Report, base: str, root: Path, outside: Path) -> None:
    (outside / "secret.png").write_bytes(SMALL)
    (root / "link.png").symlink_to(outside / "secret.png")
    (root / "linkdir").symlink_to(outside)
    os.mkfifo(root / "fifo.png")
    cases = {
        "relative climb": f"{root}/../{outside.name}/secret.png",
        "absolute outside": str(outside / "secret.png"),
        "/etc/passwd": "/etc/passwd",
        "file URI outside": (outside / "secret.png").as_uri(),
        "symlinked file": str(root / "link.png"),
        "symlinked folder": str(root / "linkdir" / "secret.png"),
        "/proc/self/environ": "/proc/self/environ",
        "/dev/zero": "/dev/zero",
        "FIFO in a root": str(root / "fifo.png"),
        "NUL byte": f"{root}/a\0.png",
        "not an image in a root": str(root / "notes.png"),
        "data URI not an image": "data:image/png;base64," + base64.b64encode(b"hello").decode(),
        "data URI not base64": "data:image/png;base64,@@@",
        "data URI text type": "data:text/plain;base64,aGVsbG8=",
        "unknown run URI": "thinkedit://runs/../../etc/final.png",
        "ftp scheme": "ftp://127.0.0.1/a.png",
        "URL while URLs are off": "http://127.0.0.1:1/a.png",
        "empty": "   ",
    }
    (root / "notes.png").write_text("hello")
    for name, image in cases.items():
        result = await asyncio.wait_for(call(base, "edit_image", {"image": image, "instruction": "add a hat"}), 120)
        message = tool_error(result)
        reason = message.split(": ", 1)[1] if message.startswith("Error executing tool") else message
        ok = len(reason.strip()) > 8  # a tool error that says why, never an empty one
        report.check("traversal", name, ok, message[:160] or "no error: the file was read")


async def run_root_race(report: Report, tmp: Path, calls: int = 400) -> None:
    """The allowed-roots race, in process (each call is one resolver load; 400 real edits would take hours)."""
    from thinkedit.agent.checkpoint import memory_checkpointer
    from thinkedit.agent.runs import Runner
    from thinkedit.servers.mcp.image_args import ImageResolver
    from thinkedit.tools.errors import BadInputError

    root, outside = tmp / "race-root", tmp / "race-outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    (root / "d" / "a.png").write_bytes(png(Image.new("RGB", (16, 16))))
    (outside / "a.png").write_bytes(png(Image.new("RGB", (48, 48))))
    resolver = ImageResolver(Runner(tmp / "race-data", memory_checkpointer()), [root])
    leaks = refused = loaded = 0

    async def loop() -> None:
        nonlocal leaks, refused, loaded
        for _ in range(calls):
            try:
                image = await resolver.load(str(root / "d" / "a.png"))
            except BadInputError:
                refused += 1
                continue
            loaded += 1
            leaks += image.width == 48

    with swapping_for_symlink(root / "d", outside):
        await loop()
    report.check("traversal", f"folder swapped for a symlink, {calls} loads", leaks == 0, f"{leaks} leaked")
    report.figure("traversal", f"root race: {calls} loads, {loaded} read inside the root, {refused} refused, {leaks} leaked")


async def run_urls(report: Report, base: str, editor_base: str) -> None:
    port = editor_base.rsplit(":", 1)[1]
    cases = {
        "loopback": f"http://127.0.0.1:{port}/health",
        "localhost": f"http://localhost:{port}/health",
        "IPv6 loopback": f"http://[::1]:{port}/health",
        "metadata service": "http://169.254.169.254/latest/meta-data/",
        "private network": "http://10.0.0.1/a.png",
        "unspecified": f"http://0.0.0.0:{port}/health",
        "decimal loopback": f"http://2130706433:{port}/health",
    }
    for name, url in cases.items():
        result = await asyncio.wait_for(call(base, "edit_image", {"image": url, "instruction": "x"}), 120)
        message = tool_error(result)
        report.check("urls", name, "refused to fetch" in message or "not a public" in message, message[:160])


async def run_loop(report: Report, base: str) -> None:
    """A 4096x4096 edit in one session; list_models in another must answer before it."""
    gradient = Image.linear_gradient("L").resize((4096, 4096)).convert("RGB")
    uri = "data:image/png;base64," + base64.b64encode(png(gradient)).decode()
    order: list[str] = []
    latencies: list[float] = []

    async def big() -> None:
        result = await call(base, "edit_image", {"image": uri, "instruction": "add a hat"})
        order.append("edit" if not result.is_error else f"edit error: {tool_error(result)[:100]}")

    async def small() -> None:
        await asyncio.sleep(1.0)  # the big call is being decoded, edited or encoded by now
        for _ in range(3):
            started = time.perf_counter()
            await call(base, "list_models", {})
            latencies.append(time.perf_counter() - started)
        order.append("list_models")

    started = time.perf_counter()
    await asyncio.gather(big(), small())
    report.check("loop", "list_models during a 4096x4096 edit", order[0] == "list_models" and "edit" in order, str(order))
    report.figure("loop", f"4096x4096 edit {time.perf_counter() - started:.1f} s; list_models meanwhile "
                          f"{max(latencies):.2f} s at most ({', '.join(f'{s:.2f}' for s in latencies)})")


# --- runs: kills and concurrent resumes --------------------------------------------------------------


def run_runs(report: Report, tmp: Path) -> None:
    from tests.cli import tiny_profile_that_never_stops_early

    profile = tiny_profile_that_never_stops_early(tmp)
    data = tmp / "runs-data"

    def cli(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "thinkedit.servers.cli", *args], cwd=ROOT, env=env_for(data),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def killed_run(at: str, out: Path) -> str:
        proc = cli("edit", str(ROOT / "examples" / "coffee.png"), "make the coffee green", "--profile", str(profile),
                   "--max-rounds", "3", "--out", str(out))
        first = ""
        for line in proc.stderr:  # type: ignore[union-attr]
            first = first or line
            if line.startswith(at):
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(60)
        return first.split()[1]

    for at in ("round 1 · critiquing", "round 2 · editing"):
        out = tmp / f"out-{at[:7].replace(' ', '')}"
        run_id = killed_run(at, out)
        _, err = cli("resume", run_id).communicate(timeout=600)
        rounds = [r["index"] for r in json.loads((out / "trajectory.json").read_text())["rounds"]] if (out / "trajectory.json").is_file() else []
        redone = at.startswith("round 2") and any(line.startswith("round 1 ·") for line in err.splitlines())
        report.check("runs", f"SIGKILL at '{at}', then resume", rounds == [1, 2, 3] and not redone, f"rounds {rounds}, redone {redone}")
    out = tmp / "out-concurrent"
    run_id = killed_run("round 2 · editing", out)
    first, second = cli("resume", run_id), cli("resume", run_id)
    results = [(p, *p.communicate(timeout=600)) for p in (first, second)]
    drove = sum("round 2 · editing" in err for _, _, err in results)
    refused = [err for p, _, err in results if p.returncode == 2 and "already being driven by thinkedit pid" in err]
    rounds = [r["index"] for r in json.loads((out / "trajectory.json").read_text())["rounds"]]
    report.check("runs", "two concurrent resumes", drove == 1 and rounds == [1, 2, 3],
                 f"{drove} drove, {len(refused)} refused, rounds {rounds}")
    report.figure("runs", f"concurrent resumes: {drove} drove, {len(refused)} refused naming the holder")


# --- driver ------------------------------------------------------------------------------------------


async def abuse(areas: tuple[str, ...] = AREAS, timeout: float = 900) -> Report:
    """Run the chosen areas against fresh servers on loopback; return the tallies."""
    report = Report()
    deadline = time.monotonic() + timeout

    async def bounded(area: str, work: Callable[[], Awaitable[None] | None]) -> None:
        if area not in areas:
            return
        if time.monotonic() > deadline:
            report.check(area, "time budget", False, "not run: the time budget was spent")
            return
        outcome = work()
        if outcome is not None:
            await asyncio.wait_for(outcome, max(1.0, deadline - time.monotonic()))

    with tempfile.TemporaryDirectory(prefix="thinkedit-abuse-") as name:
        tmp = Path(name)
        root, outside = tmp / "root", tmp / "outside"
        root.mkdir()
        outside.mkdir()
        editor_log, data = tmp / "editor.log", tmp / "data"
        needs_editor = {"uploads", "bombs", "auth", "slow", "urls"} & set(areas)
        needs_mcp = {"auth", "traversal", "urls", "loop"} & set(areas)
        with contextlib.ExitStack() as stack:
            editor = token_editor = mcp = mcp_token = mcp_urls = ""
            if needs_editor:
                editor = stack.enter_context(server(
                    ["editor", "--model", "tiny-kontext", "--header-timeout", "2", "--body-timeout", "4"], data, editor_log))
            if "auth" in areas:
                token_editor = stack.enter_context(server(["editor", "--model", "tiny-kontext", "--token", TOKEN], data,
                                                          tmp / "editor-token.log", token=TOKEN))
                mcp_token = stack.enter_context(server(["mcp", "--transport", "http", "--token", TOKEN], data,
                                                       tmp / "mcp-token.log"))
            if {"traversal", "loop"} & set(areas):
                mcp = stack.enter_context(server(["mcp", "--transport", "http", "--allow-root", str(root)], data,
                                                 tmp / "mcp.log"))
            if "urls" in areas:
                mcp_urls = stack.enter_context(server(["mcp", "--transport", "http", "--allow-urls"], data,
                                                      tmp / "mcp-urls.log"))
            await bounded("uploads", lambda: run_uploads(report, editor))
            await bounded("bombs", lambda: run_bombs(report, editor))
            await bounded("auth", lambda: run_auth(report, editor, token_editor, mcp_token))
            await bounded("slow", lambda: run_slow(report, editor, editor_log))
            await bounded("traversal", lambda: run_traversal(report, mcp, root, outside))
            await bounded("traversal", lambda: run_root_race(report, tmp))
            await bounded("urls", lambda: run_urls(report, mcp_urls, editor))
            await bounded("loop", lambda: run_loop(report, mcp))
            del needs_mcp
        await bounded("runs", lambda: run_runs(report, tmp))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--areas", default=",".join(AREAS), help=f"Comma-separated areas (default: all: {','.join(AREAS)}).")
    parser.add_argument("--timeout", type=float, default=900, help="Seconds for everything (default 900).")
    args = parser.parse_args(argv)
    areas = tuple(a.strip() for a in args.areas.split(",") if a.strip())
    unknown = sorted(set(areas) - set(AREAS))
    if unknown:
        parser.error(f"unknown areas {unknown}; choose from {AREAS}")
    started = time.perf_counter()
    report = asyncio.run(abuse(areas, args.timeout))
    print(report.table())
    print(f"{time.perf_counter() - started:.0f} s on {os.cpu_count()} CPU cores; every request to 127.0.0.1")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
