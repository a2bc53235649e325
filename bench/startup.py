"""Measure how fast the commands start: ``thinkedit --help``, and ``thinkedit serve mcp`` until it answers ``initialize``.

    PYTHONPATH=. python bench/startup.py [--samples 5]

Each sample starts a fresh process with an empty data dir (a cold start, as a desktop client makes for
every session). For the MCP server the clock runs from the process start to the ``initialize``
response on stdout (what a desktop client waits for), then to the ``tools/list`` response. The
figures are medians with their IQR, and the CPU pressure (PSI) of the run.

Beside each start of ``serve mcp`` it starts the SDK's smallest server (``SDK_SERVER``: one tool, over
stdio) and times it the same way: most of a cold start is importing the SDK, which moves with the
machine, so ``serve mcp ÷ the SDK's smallest server`` says what thinkedit adds on top of it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bench_support.spread import Pressure, pair_ratios, spread  # noqa: E402

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}
LIST_TOOLS = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}

#: The smallest stdio server the SDK makes: the floor under ``serve mcp``'s start-up.
SDK_SERVER = """
import anyio
from mcp.server.mcpserver import MCPServer

server = MCPServer("smallest")


@server.tool()
def echo(text: str) -> str:
    return text


anyio.run(server.run_stdio_async)
"""


def thinkedit() -> list[str]:
    """Return the command that runs the installed CLI with this interpreter."""
    return [sys.executable, "-m", "thinkedit.servers.cli"]


def help_seconds() -> float:
    """Time one ``thinkedit --help``."""
    started = time.perf_counter()
    subprocess.run([*thinkedit(), "--help"], check=True, capture_output=True)
    return time.perf_counter() - started


def mcp_seconds(data_dir: str, command: list[str] | None = None) -> tuple[float, float]:
    """Start ``thinkedit serve mcp`` (or ``command``); return the seconds until it answers initialize and tools/list."""
    env = {**os.environ, "THINKEDIT_DATA_DIR": data_dir}
    started = time.perf_counter()
    proc = subprocess.Popen(command or [*thinkedit(), "serve", "mcp", "--profile", "tiny"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write((json.dumps(INITIALIZE) + "\n").encode())
        proc.stdin.flush()
        answer = json.loads(proc.stdout.readline())
        initialized = time.perf_counter() - started
        assert answer.get("id") == 1 and "result" in answer, answer
        proc.stdin.write((json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n").encode())
        proc.stdin.write((json.dumps(LIST_TOOLS) + "\n").encode())
        proc.stdin.flush()
        while (answer := json.loads(proc.stdout.readline())).get("id") != 2:
            pass
        listed = time.perf_counter() - started
        assert answer["result"]["tools"], answer
    finally:
        proc.kill()
        proc.wait()
    return initialized, listed


def figures(samples: int = 5) -> dict[str, Any]:
    """Take ``samples`` fresh starts of each; return the spreads and the CPU pressure."""
    helps: list[float] = []
    starts: dict[str, list[float]] = {"initialize": [], "tools_list": [], "sdk": []}
    sdk = [sys.executable, "-c", SDK_SERVER]
    with tempfile.TemporaryDirectory(prefix="thinkedit-startup-") as tmp, Pressure() as pressure:
        mcp_seconds(str(Path(tmp) / "first"))  # warms the file cache; not counted
        mcp_seconds(str(Path(tmp) / "first-sdk"), sdk)
        for n in range(samples):
            helps.append(help_seconds())
            initialized, listed = mcp_seconds(str(Path(tmp) / f"cold-{n}"))
            starts["initialize"].append(initialized)
            starts["tools_list"].append(listed)
            starts["sdk"].append(mcp_seconds(str(Path(tmp) / f"sdk-{n}"), sdk)[0])
    return {"help": spread(helps), "initialize": spread(starts["initialize"]),
            "tools_list": spread(starts["tools_list"]), "sdk_initialize": spread(starts["sdk"]),
            "initialize_over_sdk": pair_ratios(starts["initialize"], starts["sdk"]), "pressure": pressure.text()}


def main() -> None:
    """Print the start-up times."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=5, help="Fresh starts of each command (default 5).")
    f = figures(parser.parse_args().samples)
    print(f"thinkedit --help                  : {f['help'].text(2, 1, ' s')}")
    print(f"thinkedit serve mcp → initialize  : {f['initialize'].text(2, 1, ' s')}")
    print(f"thinkedit serve mcp → tools/list  : {f['tools_list'].text(2, 1, ' s')}")
    print(f"the SDK's smallest server → initialize: {f['sdk_initialize'].text(2, 1, ' s')}")
    print(f"serve mcp ÷ the SDK's smallest server, until initialize: {f['initialize_over_sdk'].text()}")
    print("(each a fresh process with an empty data dir)")
    print(f["pressure"])


if __name__ == "__main__":
    main()
