"""The MCP server as a desktop client runs it: a subprocess over stdio, with a real client session."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from PIL import Image

from tests.mcp_scripted_server import write_profile
from tests.mcp_support import (
    CHELSEA,
    NATIVE,
    ROOT,
    check_structured,
    error_text,
    result_size,
    server_env,
    stdio_session,
)

TOOLS = {"think_while_edit", "edit_image", "critique_edit", "get_run", "review_run", "cancel_run", "list_models"}

HELP_PROBE = """
import argparse, json, sys
from thinkedit.servers.mcp import cli
parser = argparse.ArgumentParser()
commands = parser.add_subparsers()
cli.register(commands)
text = commands.choices["mcp"].format_help()
print(json.dumps({"help": text, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in {"mcp", "mcp_types", "pydantic"})}))
"""

#: ``thinkedit`` with a list_models handler that writes to stdout as a careless library would.
NOISY_SERVER = """
import os, sys
from thinkedit.servers.mcp import handlers
real = handlers.list_models
async def noisy(args, ctx):
    print("stray print from a library", flush=True)
    os.write(1, b"stray bytes on fd 1\\n")
    return await real(args, ctx)
handlers.list_models = noisy
from thinkedit.servers.cli import main
sys.exit(main())
"""


def desktop_params(pictures: Path, data_dir: Path) -> StdioServerParameters:
    """Start the server exactly as ``thinkedit mcp-config`` tells a client to (cwd '/', as Claude Desktop)."""
    out = subprocess.run(
        [sys.executable, "-m", "thinkedit.servers.cli", "mcp-config", "--allow-root", str(ROOT), "--allow-root", str(pictures)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    entry = json.loads(out.stdout)["mcpServers"]["thinkedit"]
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), **entry.get("env", {})}
    env["THINKEDIT_DATA_DIR"] = str(data_dir)
    # A smaller inline-image limit than the default keeps the oversize check cheap.
    return StdioServerParameters(
        command=entry["command"], args=[*entry["args"], "--max-image-mb", "1"], env=env, cwd="/"
    )


@pytest.mark.slow
async def test_desktop_client_session_with_the_tiny_profile(mcp_data_dir: Path, tmp_path: Path) -> None:
    pictures = tmp_path / "pictures"  # a second allowed root, for the bad-input files
    pictures.mkdir()
    shutil.copyfile(CHELSEA, pictures / "chelsea.png")
    photo = CHELSEA
    with open(tmp_path / "server.log", "w") as log:
        transport = stdio_client(desktop_params(pictures, mcp_data_dir), errlog=log)
        async with Client(transport, mode="legacy", client_info=NATIVE) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) == TOOLS
            for tool in tools.values():
                assert tool.input_schema["additionalProperties"] is False and tool.output_schema
                assert all(p.get("description") for p in tool.input_schema.get("properties", {}).values())
            templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
            assert {"thinkedit://runs/{run_id}", "thinkedit://runs/{run_id}/rounds/{n}.png"} <= templates

            notes: list[str] = []

            async def progress(p: float, total: float | None, message: str | None) -> None:
                notes.append(message or "")

            result = await client.call_tool(
                "think_while_edit",
                {"image": str(photo), "instruction": "put a red party hat on the cat", "wait_seconds": 240},
                progress_callback=progress,
            )
            run = check_structured(result, tools["think_while_edit"].output_schema)
            assert run["status"] == "done", run
            for r in run["rounds"]:  # at least one notification per round, naming the round and its scores
                assert any(f"round {r['index']}/" in n and "semantic" in n for n in notes), notes
            assert result_size(result) < 1_000_000
            (image,) = [b for b in result.content if b.type == "image"]
            preview = Image.open(io.BytesIO(base64.b64decode(image.data)))
            assert preview.size == Image.open(CHELSEA).size
            (link,) = [b for b in result.content if b.type == "resource_link"]
            assert link.uri == run["final_image"]["resource_uri"] and Path(run["final_image"]["path"]).is_file()
            full = await client.read_resource(link.uri)
            assert Image.open(io.BytesIO(base64.b64decode(full.contents[0].blob))).size == preview.size
            trajectory = json.loads((await client.read_resource(f"thinkedit://runs/{run['run_id']}")).contents[0].text)
            assert trajectory["rounds"] == run["rounds"]

            # Chain: edit the result again, then judge that edit against the original.
            edited = await client.call_tool("edit_image", {"image": link.uri, "instruction": "make the hat blue"})
            out = check_structured(edited, tools["edit_image"].output_schema)
            verdict = await client.call_tool(
                "critique_edit", {"source": str(photo), "edited": out["image"]["resource_uri"], "instruction": "hat"}
            )
            assert 0 <= check_structured(verdict, tools["critique_edit"].output_schema)["semantic"] <= 10

            await check_bad_inputs(client, pictures, tmp_path)


async def check_bad_inputs(client: Client, pictures: Path, tmp_path: Path) -> None:
    """Each bad input is a tool error naming the problem, and the server stays up after it."""
    (tmp_path / "secret.png").write_bytes((pictures / "chelsea.png").read_bytes())
    (pictures / "escape.png").symlink_to(tmp_path / "secret.png")
    (pictures / "notes.png").write_text("not a picture")
    oversize = "data:image/png;base64," + base64.b64encode(os.urandom(1_500_000)).decode()
    cases = [
        ("think_while_edit", {"image": str(tmp_path / "secret.png"), "instruction": "x"}, "outside the allowed roots"),
        ("think_while_edit", {"image": str(pictures / "escape.png"), "instruction": "x"}, "symlink"),
        ("edit_image", {"image": str(pictures / "notes.png"), "instruction": "x"}, "not an image"),
        ("edit_image", {"image": oversize, "instruction": "x"}, "data URI is too large"),
        ("get_run", {"run_id": "no-such-run"}, "unknown run id"),
        (
            "think_while_edit",
            {"image": str(pictures / "chelsea.png"), "instruction": "x", "max_rounds": 0},
            "max_rounds",
        ),
    ]
    for tool, arguments, problem in cases:
        assert problem in error_text(await client.call_tool(tool, arguments)), (tool, problem)
        assert (await client.call_tool("list_models", {})).structured_content["profile"] == "tiny"


async def test_hand_off_get_run_and_cancellation_over_stdio(tmp_path: Path) -> None:
    # Edits slow enough that the run outlasts a loaded machine's pause between the first call's
    # answer and get_run (a first call in a fresh server also pays its lazy imports): get_run must
    # find the run still going to see its progress.
    profile = write_profile(tmp_path / "slow.toml", delay=1.0, max_rounds=3)
    args = ["--profile", str(profile), "--allow-root", str(ROOT)]
    async with stdio_session(
        tmp_path / "data", *args, log=tmp_path / "server.log", module="tests.mcp_scripted_server"
    ) as client:
        call = {"image": str(CHELSEA), "instruction": "put a hat on the cat"}
        # The wait budget runs out: the tool returns the run id and the run goes on.
        first = (await client.call_tool("think_while_edit", {**call, "wait_seconds": 0.5})).structured_content
        assert first["status"] == "running" and len(first["rounds"]) <= 1
        notes: list[float] = []

        async def progress(p: float, total: float | None, message: str | None) -> None:
            notes.append(p)

        done = await client.call_tool(
            "get_run", {"run_id": first["run_id"], "wait_seconds": 60}, progress_callback=progress
        )
        assert done.structured_content["status"] == "done" and len(done.structured_content["rounds"]) == 3
        assert notes and notes == sorted(set(notes)), notes  # each above the one before

        # cancel_run stops a handed-off run.
        second = (await client.call_tool("think_while_edit", {**call, "wait_seconds": 0})).structured_content
        stopped = await client.call_tool("cancel_run", {"run_id": second["run_id"]})
        assert stopped.structured_content["status"] == "cancelled"

        # Cancelling the call itself stops the run it started.
        started = anyio.Event()

        async def first_note(p: float, total: float | None, message: str | None) -> None:
            started.set()

        async with anyio.create_task_group() as tg:
            long_call = {**call, "wait_seconds": 60}
            tg.start_soon(lambda: client.call_tool("think_while_edit", long_call, progress_callback=first_note))
            with anyio.fail_after(30):
                await started.wait()
            tg.cancel_scope.cancel()
        runs = sorted((tmp_path / "data" / "runs").glob("*.json"), key=lambda p: p.stat().st_mtime)
        third = json.loads(runs[-1].read_text())["run_id"]
        assert third not in {first["run_id"], second["run_id"]}
        # The server stops the run at its next safe point: on a loaded machine that may take a moment.
        with anyio.fail_after(30):
            while (look := await client.call_tool("get_run", {"run_id": third, "wait_seconds": 0})).structured_content[
                "status"
            ] == "running":
                await anyio.sleep(0.5)
        assert look.structured_content["status"] == "cancelled"
        assert len(look.structured_content["rounds"]) < 3


def test_serve_mcp_help_imports_neither_the_sdk_nor_pydantic() -> None:
    done = subprocess.run([sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert probe["loaded"] == []
    assert "tiny-qwen" in probe["help"] and "--resource-links" in probe["help"]  # the packaged profiles are named


@pytest.mark.slow  # starts a server process
async def test_stray_output_misses_the_wire_and_nothing_is_cached_for_the_next_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    argv = ["-c", NOISY_SERVER, "serve", "mcp", "--profile", "tiny"]
    params = StdioServerParameters(command=sys.executable, args=argv, env=server_env(data_dir), cwd=str(ROOT))
    with open(tmp_path / "server.log", "w") as log:
        async with Client(stdio_client(params, errlog=log), mode="legacy", read_timeout_seconds=120,
                          client_info=NATIVE) as client:
            for _ in range(2):  # the session goes on after the stray lines
                models = await client.call_tool("list_models", {})
                assert not models.is_error and models.structured_content["profile"] == "tiny", models
    logged = (tmp_path / "server.log").read_text()
    assert "stray print from a library" in logged and "stray bytes on fd 1" in logged  # on stderr, not the wire
    assert not (data_dir / "mcp").exists()  # the SDK answers every handshake; no answers are kept on disk


@pytest.mark.slow  # starts a server process
def test_a_server_that_cannot_start_says_why_on_stderr_and_answers_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in server_env(tmp_path / "data").items() if k != "OPENAI_API_KEY"}
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}}}
    done = subprocess.run([sys.executable, "-m", "thinkedit.servers.cli", "serve", "mcp", "--profile", "openai"],
                          input=json.dumps(initialize) + "\n", capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 2
    assert "thinkedit: error: profile openai needs an API key in $OPENAI_API_KEY" in done.stderr
    assert done.stdout == ""  # only the SDK speaks the protocol, and it never started
