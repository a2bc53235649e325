"""Helpers for the MCP tests: start real servers on loopback, connect real clients, check results."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import Implementation

ROOT = Path(__file__).resolve().parent.parent
#: A named client, as desktop and IDE clients are (the Python SDK's default name gets no resource links).
NATIVE = Implementation(name="thinkedit-tests", version="0")
CHELSEA = ROOT / "examples" / "chelsea.png"


def server_env(data_dir: Path) -> dict[str, str]:
    """Return the environment a server subprocess gets: the repo on PYTHONPATH, a temp data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("THINKEDIT_")}
    env.update(PYTHONPATH=str(ROOT), THINKEDIT_DATA_DIR=str(data_dir))
    return env


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def stdio_session(
    data_dir: Path, *args: str, log: Path | None = None, module: str = "thinkedit.servers.cli"
) -> AsyncIterator[Client]:
    """Start ``thinkedit serve mcp`` over stdio and connect an MCP client (legacy handshake, as desktop clients do)."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", module, "serve", "mcp", *args], env=server_env(data_dir), cwd=str(ROOT)
    )
    with open(log or os.devnull, "w") as errlog:
        transport = stdio_client(params, errlog=errlog)
        async with Client(transport, mode="legacy", read_timeout_seconds=300, client_info=NATIVE) as client:
            yield client


@contextlib.contextmanager
def http_server(
    data_dir: Path, *args: str, port: int | None = None, log: Path | None = None, module: str = "thinkedit.servers.cli"
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start ``thinkedit serve mcp --transport http`` on a free loopback port; yield its base URL and process."""
    port = port or free_port()
    cmd = [sys.executable, "-m", module, "serve", "mcp", "--transport", "http", "--port", str(port), *args]
    with open(log or os.devnull, "w") as errlog:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=server_env(data_dir), stdout=errlog, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, proc)
            yield base, proc
        finally:
            stop(proc)


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    """Poll ``/health`` until the server answers (or fail if it exits or takes too long)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{base} not ready after {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server and wait for it (kill it if it will not stop)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.asynccontextmanager
async def http_session(base: str, token: str | None = None) -> AsyncIterator[Client]:
    """Connect an MCP client over streamable HTTP (with a bearer token when given)."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with create_mcp_http_client(headers=headers) as http:
        transport = streamable_http_client(f"{base}/mcp", http_client=http)
        async with Client(transport, read_timeout_seconds=300, client_info=NATIVE) as client:
            yield client


def result_size(result: Any) -> int:
    """Return the size of a tool result as it travels (JSON)."""
    return len(result.model_dump_json(by_alias=True, exclude_none=True).encode())


def check_structured(result: Any, output_schema: dict[str, Any]) -> dict[str, Any]:
    """Validate a result's structured content against the tool's output schema; return it."""
    assert result.structured_content is not None
    jsonschema.validate(result.structured_content, output_schema)
    text = [b.text for b in result.content if b.type == "text"]
    assert json.loads(text[-1]) == result.structured_content  # the same, as JSON text
    return result.structured_content


def error_text(result: Any) -> str:
    """Return the text of an error result (and check it is one)."""
    assert result.is_error, result
    return " ".join(b.text for b in result.content if b.type == "text")
