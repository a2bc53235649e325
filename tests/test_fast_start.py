"""Start-up stays light: ``--help`` imports no heavy library, and the MCP server answers before it imports any."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

#: Libraries whose import costs seconds (LangGraph pulls in langchain-core and langsmith).
HEAVY = ("langgraph", "langchain_core", "torch", "diffusers", "transformers", "fastapi", "thinkedit.agent.runs")

HELP_PROBE = """
import json, sys
from thinkedit.servers.cli import build_parser
build_parser().format_help()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy} or m in {heavy})))
"""

MCP_PROBE = """
import json, sys, anyio
from pathlib import Path
from mcp import Client
from thinkedit.servers.mcp import app
from thinkedit.servers.mcp.config import ServerConfig

gate = anyio.Event()
real_open = app._open

async def held_open(state, stack, backends):
    await gate.wait()  # the server's background start-up waits until the handshake is checked
    await real_open(state, stack, backends)

app._open = held_open
server = app.build_server(ServerConfig(profile="tiny", data_dir=Path(sys.argv[1])))

def heavy():
    return sorted(m for m in sys.modules if m.split(".")[0] in {heavy} or m in {heavy})

async def main():
    async with Client(server, mode="legacy") as client:
        names = sorted(t.name for t in (await client.list_tools()).tools)
        before = heavy()
        gate.set()
        models = await client.call_tool("list_models", {{}})
        print(json.dumps({{"tools": names, "heavy_before": before, "heavy_after": heavy(),
                          "models_error": bool(models.is_error)}}))

anyio.run(main)
"""


def probe(code: str, *args: str) -> object:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_imports_no_heavy_library() -> None:
    assert probe(HELP_PROBE.format(heavy=set(HEAVY))) == []


@pytest.mark.slow  # a subprocess that imports the MCP SDK, then the agent: seconds
def test_mcp_server_answers_the_handshake_and_tools_list_before_heavy_imports(tmp_path: Path) -> None:
    result = probe(MCP_PROBE.format(heavy=set(HEAVY)), str(tmp_path / "data"))
    assert "think_while_edit" in result["tools"] and "list_models" in result["tools"]
    assert result["heavy_before"] == []
    # Behind the handshake the agent loads and the tools work.
    assert "langgraph" in result["heavy_after"] and not result["models_error"]
