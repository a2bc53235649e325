"""Resource links by client: named (MCP-native) clients get them, generic client libraries do not."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client
from mcp.types import Implementation

from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts
from tests.mcp_support import CHELSEA, ROOT
from thinkedit.servers.mcp.server import build_server
from thinkedit.servers.mcp.lifespan import ServerConfig
from thinkedit.tools.errors import BadInputError


def server(data_dir: Path, links: str = "auto") -> object:
    backends = FakeBackends(ScriptedEditor(), ScriptedThinker(verdicts((9, 9, "done"))))
    return build_server(ServerConfig(data_dir=data_dir, roots=[ROOT], resource_links=links), backends=backends)


async def kinds(srv: object, name: str | None, mode: str = "legacy") -> dict[str, list[str]]:
    info = Implementation(name=name, version="1") if name else None
    async with Client(srv, mode=mode, client_info=info) as client:
        run = await client.call_tool("think_while_edit", {"image": str(CHELSEA), "instruction": "add a hat"})
        one = await client.call_tool("edit_image", {"image": str(CHELSEA), "instruction": "add a hat"})
    assert run.structured_content["status"] == "done"
    assert "thinkedit://" in run.content[0].text  # the summary names the full-size image either way
    return {"run": [b.type for b in run.content], "edit": [b.type for b in one.content]}


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
@pytest.mark.parametrize(
    ("name", "linked"),
    [("claude-code", True), ("Visual Studio Code", True), (None, False), ("fastmcp", False), ("langchain", False)],
)
async def test_links_follow_the_client(data_dir: Path, mode: str, name: str | None, linked: bool) -> None:
    got = await kinds(server(data_dir), name, mode)
    for blocks in got.values():
        assert blocks[:2] == ["text", "image"] and ("resource_link" in blocks) is linked, (name, blocks)


async def test_the_policy_can_be_fixed(data_dir: Path) -> None:
    assert "resource_link" in (await kinds(server(data_dir, "always"), None))["run"]
    assert "resource_link" not in (await kinds(server(data_dir / "b", "never"), "claude-code"))["run"]


def test_a_bad_policy_is_refused(data_dir: Path) -> None:
    with pytest.raises(BadInputError, match="resource_links must be auto, always or never"):
        server(data_dir, "sometimes")
