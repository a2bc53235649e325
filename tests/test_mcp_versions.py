"""The server speaks protocol 2025-11-25 (initialize handshake) and 2026-07-28 (stateless) to real clients.

Also what a client shows of the tools: titles, icons and the spec's behaviour hints.
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from mcp import Client

from tests.mcp_scripted_server import write_profile
from tests.mcp_support import CHELSEA, ROOT, check_structured, http_server
from thinkedit.servers.mcp.server import build_server
from thinkedit.servers.mcp.lifespan import ServerConfig

HINTS = {  # tool: (readOnly, destructive, idempotent)
    "think_while_edit": (False, False, False),
    "edit_image": (False, False, False),
    "critique_edit": (True, None, False),
    "get_run": (False, False, True),
    "review_run": (False, False, False),
    "cancel_run": (False, True, True),
    "list_models": (True, None, True),
}


def check_tools(tools: list, open_world: bool = False) -> None:
    assert {t.name for t in tools} == set(HINTS)
    for tool in tools:
        hints = tool.annotations
        assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint) == HINTS[tool.name], tool.name
        assert tool.title and hints.title == tool.title
        assert hints.open_world_hint is (open_world and tool.name not in {"cancel_run", "list_models"})
        (icon,) = tool.icons
        assert icon.mime_type == "image/svg+xml" and icon.sizes == ["any"]
        assert icon.src.startswith("data:image/svg+xml;base64,")
        assert base64.b64decode(icon.src.split(",", 1)[1]).startswith(b"<svg")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_both_protocol_versions_over_http(tmp_path: Path, mode: str) -> None:
    profile = write_profile(tmp_path / "quick.toml", delay=0.1, max_rounds=2)
    args = ["--profile", str(profile), "--allow-root", str(ROOT)]
    with http_server(tmp_path / "data", *args, log=tmp_path / "server.log", module="tests.mcp_scripted_server") as (
        base,
        _,
    ):
        async with Client(f"{base}/mcp", mode=mode, read_timeout_seconds=120) as client:
            assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
            tools = (await client.list_tools()).tools
            check_tools(tools)
            notes: list[float] = []

            async def progress(p: float, total: float | None, message: str | None) -> None:
                notes.append(p)

            result = await client.call_tool(
                "think_while_edit",
                {"image": str(CHELSEA), "instruction": "put a hat on the cat", "wait_seconds": 60},
                progress_callback=progress,
            )
            schema = {t.name: t for t in tools}["think_while_edit"].output_schema
            run = check_structured(result, schema)
            assert run["status"] == "done" and len(run["rounds"]) == 2 and notes and notes[-1] == 7  # 3 a round, done
            assert notes == sorted(set(notes)), notes  # each above the one before
            png = await client.read_resource(run["final_image"]["resource_uri"])
            assert png.contents[0].mime_type == "image/png"
            if mode == "legacy":
                assert client.session.server_info.icons and client.session.server_info.title


@pytest.mark.slow
async def test_raw_2026_requests_and_an_unknown_version(tmp_path: Path) -> None:
    """A 2026-07-28 request is one POST with its envelope in _meta; an unknown version is refused clearly."""

    def post(base: str, version: str) -> httpx.Response:
        headers = {
            "Accept": "application/json, text/event-stream",
            "mcp-protocol-version": version,
            "mcp-method": "tools/list",
        }
        meta = {"io.modelcontextprotocol/protocolVersion": version, "io.modelcontextprotocol/clientCapabilities": {}}
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}}
        return httpx.post(f"{base}/mcp", json=body, headers=headers, timeout=30)

    with http_server(tmp_path / "data", "--allow-root", str(ROOT), log=tmp_path / "server.log") as (base, _):
        listed = post(base, "2026-07-28")
        unknown = post(base, "2099-01-01")
    assert listed.status_code == 200, listed.text
    assert "think_while_edit" in listed.text and "idempotentHint" in listed.text
    assert unknown.status_code == 400 and "2026-07-28" in unknown.text, unknown.text


def test_hints_say_open_world_when_the_models_or_images_are_elsewhere(tmp_path: Path) -> None:
    local = build_server(ServerConfig(data_dir=tmp_path, roots=[ROOT]))
    check_tools(list(local._tool_manager.list_tools()), open_world=False)
    fetching = build_server(ServerConfig(data_dir=tmp_path, roots=[ROOT], allow_urls=True))
    check_tools(list(fetching._tool_manager.list_tools()), open_world=True)
