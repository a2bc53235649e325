"""The MCP server over streamable HTTP: bearer token, body limit, a tiny run, and a restart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.mcp_support import (
    CHELSEA,
    ROOT,
    check_structured,
    free_port,
    http_server,
    http_session,
    result_size,
    server_env,
)

def noise_png(seed: int, under: int) -> bytes:
    """Return a PNG of random pixels whose file is just under ``under`` bytes (noise does not compress)."""
    import io

    import numpy as np
    from PIL import Image

    side = int((under / 3) ** 0.5)
    while True:
        buffer = io.BytesIO()
        pixels = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(buffer, format="PNG")
        if len(buffer.getvalue()) < under:
            return buffer.getvalue()
        side -= 8


def data_uri(png: bytes) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(png).decode()


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "curl", "version": "0"}},
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.mark.slow
async def test_token_body_limit_and_a_tiny_run(mcp_data_dir: Path, tmp_path: Path) -> None:
    token = "test-token-1234"
    args = ["--token", token, "--allow-root", str(ROOT), "--max-image-mb", "1"]
    with http_server(mcp_data_dir, *args, log=tmp_path / "server.log") as (base, _):
        assert httpx.post(f"{base}/mcp", json=INITIALIZE, headers=HEADERS).status_code == 401
        wrong = {**HEADERS, "Authorization": "Bearer nope"}
        assert httpx.post(f"{base}/mcp", json=INITIALIZE, headers=wrong).status_code == 401
        assert httpx.get(f"{base}/mcp", headers={"Authorization": f"Basic {token}"}).status_code == 401
        authorised = {**HEADERS, "Authorization": f"Bearer {token}"}
        huge = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": "' + b"a" * 6_000_000 + b'"}}'
        assert httpx.post(f"{base}/mcp", content=huge, headers=authorised).status_code == 413
        assert httpx.post(f"{base}/mcp", json=INITIALIZE, headers=authorised).status_code == 200

        async with http_session(base, token) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            result = await client.call_tool(
                "think_while_edit",
                {"image": str(CHELSEA), "instruction": "put a red party hat on the cat", "max_rounds": 1},
            )
            run = check_structured(result, tools["think_while_edit"].output_schema)
            assert run["status"] == "done" and len(run["rounds"]) == 1
            assert result_size(result) < 1_000_000 and any(b.type == "image" for b in result.content)

            # An image and both references, each just under --max-image-mb as a data: URI, fit in one request.
            near_limit = [data_uri(noise_png(seed, 1_000_000)) for seed in range(3)]
            full = await client.call_tool("edit_image", {"image": near_limit[0], "references": near_limit[1:],
                                                         "instruction": "put the hat from image 2 on the cat"})
            said = " ".join(b.text for b in full.content if b.type == "text")
            # It reached the tool, which read all three (before, the body limit answered 413): the tiny
            # editor takes no references, and says so.
            assert full.is_error and "got the source and 2 reference(s)" in said, said


def test_binding_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "thinkedit.servers.cli",
        "serve",
        "mcp",
        "--transport",
        "http",
        "--host",
        "0.0.0.0",
        "--port",
        str(free_port()),
    ]
    out = subprocess.run(cmd, cwd=ROOT, env=server_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "needs a bearer token" in out.stderr


@pytest.mark.slow
async def test_a_killed_server_resumes_its_run_after_a_restart(mcp_data_dir: Path, tmp_path: Path) -> None:
    args = ["--allow-root", str(ROOT)]
    with http_server(mcp_data_dir, *args, log=tmp_path / "first.log") as (base, proc):
        async with http_session(base) as client:
            first = await client.call_tool(
                "think_while_edit",
                {"image": str(CHELSEA), "instruction": "add a hat", "max_rounds": 2, "wait_seconds": 0},
            )
        run_id = first.structured_content["run_id"]
        assert first.structured_content["status"] == "running"
        proc.kill()  # no clean shutdown: the record still says running
        proc.wait()
    record = json.loads((mcp_data_dir / "runs" / f"{run_id}.json").read_text())
    assert record["status"] == "running"

    with http_server(mcp_data_dir, *args, log=tmp_path / "second.log") as (base, _):
        async with http_session(base) as client:
            done = await client.call_tool("get_run", {"run_id": run_id, "wait_seconds": 240})
            assert done.structured_content["status"] == "done", done.structured_content
            assert done.structured_content["final_image"] is not None


def test_the_http_server_announces_its_address_as_information(mcp_data_dir: Path, tmp_path: Path) -> None:
    """At the default verbosity the address is shown, and nothing calls itself a warning when all is well."""
    log = tmp_path / "server.log"
    with http_server(mcp_data_dir, log=log) as (base, _):
        lines = log.read_text().splitlines()
        assert f"thinkedit MCP server at {base}/mcp" in lines
        assert not [line for line in lines if "WARNING" in line], lines
        assert httpx.get(f"{base}/health").status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "LocalHost", "0:0:0:0:0:0:0:1"])
def test_every_loopback_spelling_guards_host_and_origin(host: str) -> None:
    """A loopback bind, however it is written, answers only loopback Host names and its own kind of Origin."""
    from fastapi.testclient import TestClient
    from mcp.server.mcpserver import MCPServer

    from thinkedit.servers.mcp.http_transport import http_app

    app = http_app(MCPServer("guarded"), host=host, token=None, max_body_bytes=1_000_000)
    with TestClient(app, base_url="http://127.0.0.1:8765") as http:  # in process: no traffic leaves it
        rebound = http.post("/mcp", json=INITIALIZE, headers={**HEADERS, "Host": "evil.example:8765"})
        assert rebound.status_code == 421, rebound.text
        assert rebound.json()["error"]["message"] == "Host 'evil.example:8765' is not this loopback server"
        page = http.post("/mcp", json=INITIALIZE, headers={**HEADERS, "Origin": "https://evil.example"})
        assert page.status_code == 403 and "evil.example" in page.json()["error"]["message"], page.text
        for name in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "127.0.0.2:8765"):
            opened = http.post("/mcp", json=INITIALIZE, headers={**HEADERS, "Host": name,
                                                                 "Origin": f"http://{name}"})
            assert opened.status_code == 200, (name, opened.text)
            (answer,) = [json.loads(line[5:]) for line in opened.text.splitlines() if line.startswith("data: {")]
            assert answer["result"]["serverInfo"]["name"] == "guarded", name
        # A page served from another local port (a dev server, a notebook) is another site: refused.
        for origin in ("http://localhost:5173", "http://127.0.0.1:8766", "http://127.0.0.1"):
            other = http.post("/mcp", json=INITIALIZE, headers={**HEADERS, "Origin": origin})
            assert other.status_code == 403, (origin, other.text)
        renamed = http.post("/mcp", json=INITIALIZE, headers={**HEADERS, "Origin": "http://localhost:8765"})
        assert renamed.status_code == 200, renamed.text  # this server's port under another name of this machine
