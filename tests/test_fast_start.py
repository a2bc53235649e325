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
from thinkedit.servers.mcp import lifespan
from thinkedit.servers.mcp.lifespan import ServerConfig
from thinkedit.servers.mcp.server import build_server

gate = anyio.Event()
real_open = lifespan._open

async def held_open(*args):
    await gate.wait()  # the server's background start-up waits until the handshake is checked
    await real_open(*args)

lifespan._open = held_open
server = build_server(ServerConfig(profile="tiny", data_dir=Path(sys.argv[1])))

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


HANDSHAKE_PROBE = """
import json, sys, anyio
from pathlib import Path
from thinkedit.servers.mcp.lifespan import ServerConfig, base_settings, lifespan
from thinkedit.servers.mcp.server import HANDLERS

def heavy():
    return sorted(m for m in sys.modules if m.split(".")[0] in {heavy} or m in {heavy})

async def main():
    stdio = ServerConfig(profile="tiny", data_dir=Path(sys.argv[1]) / "stdio")
    async with lifespan(stdio, base_settings(stdio), None, HANDLERS)(None) as state:
        await anyio.sleep(1)  # room for background work, were any started before the first message
        left = {{"opened": state.opened.is_set()}}
    left["heavy"] = heavy()  # the lifespan has ended: whatever it opened, it opened by now
    http = ServerConfig(profile="tiny", data_dir=Path(sys.argv[1]) / "http", open_after_handshake=False)
    async with lifespan(http, base_settings(http), None, HANDLERS)(None) as state:
        with anyio.fail_after(300):
            await state.ready()  # no message comes: an HTTP server opens at start-up
        opened = state.runner is not None
    print(json.dumps({{"left_before_greeting": left, "http_opened_unasked": opened, "heavy_after": heavy()}}))

anyio.run(main)
"""


@pytest.mark.slow  # imports the agent once: seconds
def test_over_stdio_the_agent_waits_for_the_first_message_after_initialize(tmp_path: Path) -> None:
    # The agent's import on a worker thread would take turns with the initialize answer for the interpreter;
    # a client that leaves after the handshake costs no import, and the server still stops at once.
    result = probe(HANDSHAKE_PROBE.format(heavy=set(HEAVY)), str(tmp_path))
    assert result["left_before_greeting"] == {"opened": False, "heavy": []}
    assert result["http_opened_unasked"] is True and "langgraph" in result["heavy_after"]


BUILD_PROBE = """
import argparse, json, sys
from pathlib import Path
from thinkedit.servers.mcp import cli
parser = argparse.ArgumentParser()
cli.register(parser.add_subparsers())
args = parser.parse_args(["mcp", "--profile", "tiny", "--data-dir", sys.argv[1]])
cli._build(args, args.data_dir)
print(json.dumps(sorted(m for m in ("PIL", "numpy", "httpx", "fsspec") if m in sys.modules)))
"""


def test_serve_mcp_builds_its_server_without_image_or_http_libraries(tmp_path: Path) -> None:
    # The options and the server are built before initialize is answered: images and HTTP load behind it.
    assert probe(BUILD_PROBE, str(tmp_path)) == []


LAZY_PROBE = """
import json, sys
from thinkedit.servers.cli import build_parser
before = set(sys.modules)
parser = build_parser(sys.argv[1:])
text = parser.format_help()
mods = sorted(m for m in set(sys.modules) - before if m.startswith("thinkedit."))
print(json.dumps({{"modules": mods, "pydantic": "pydantic" in sys.modules, "help": text}}))
"""

COMMAND_MODULES = {
    "thinkedit.servers.cli.run_commands", "thinkedit.servers.cli.profile_commands", "thinkedit.servers.cli.eval_commands",
    "thinkedit.servers.cli.data_commands", "thinkedit.servers.cli.models_command", "thinkedit.servers.mcp.client_config",
    "thinkedit.servers.ui.cli", "thinkedit.servers.editor.cli", "thinkedit.servers.thinker.cli", "thinkedit.servers.mcp.cli",
}


def lazy(*argv: str) -> dict:
    result = probe(LAZY_PROBE.format(), *argv)
    assert isinstance(result, dict)
    return result


def test_top_level_help_builds_no_command_and_imports_no_pydantic() -> None:
    result = lazy("--help")
    assert not COMMAND_MODULES & set(result["modules"]), result["modules"]
    assert result["pydantic"] is False
    # The listing from the table is the listing of the full parser (every module's own add_parser help).
    from thinkedit.servers.cli import build_parser

    assert result["help"] == build_parser().format_help()


def test_a_command_line_builds_only_the_command_it_names() -> None:
    result = lazy("serve", "mcp", "--help")
    built = COMMAND_MODULES & set(result["modules"])
    assert built == {"thinkedit.servers.mcp.cli"}, built
    result = lazy("-vv", "runs")
    assert COMMAND_MODULES & set(result["modules"]) == {"thinkedit.servers.cli.run_commands"}


def test_lazy_and_full_parsers_parse_alike() -> None:
    from thinkedit.servers.cli import build_parser

    for argv in (["edit", "a.png", "add a hat", "--max-rounds", "2", "-v"], ["-v", "runs"],
                 ["serve", "editor", "--model", "tiny-kontext", "--port", "0"], ["resume", "abc"]):
        lazy_args, full_args = build_parser(argv).parse_args(argv), build_parser().parse_args(argv)
        assert vars(lazy_args) == vars(full_args), argv


@pytest.mark.parametrize("argv", [["bogus"], ["serve", "bogus"], [], ["serve"]])
def test_unknown_or_missing_commands_still_list_every_choice(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from thinkedit.servers.cli import build_parser

    with pytest.raises(SystemExit) as raised:
        build_parser(argv).parse_args(argv)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    expected = ("editor", "thinker", "mcp") if argv[:1] == ["serve"] else ("edit", "resume", "serve", "ui")
    listed = err.split("choose from ", 1)[1]  # the error itself names the choices, missing command or unknown
    assert all(f"'{name}'" in listed for name in expected), err
