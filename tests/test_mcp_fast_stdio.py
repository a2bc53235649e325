"""``serve mcp`` over stdio answers a cached handshake before it imports the SDK, and then works as before.

Real server processes and the SDK's real client (``stdio_client`` + ``Client``), as a desktop client
starts them: once to fill the handshake cache, again to be answered from it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import Implementation
from mcp_types import ElicitResult

from tests.mcp_scripted_server import write_profile
from tests.mcp_support import CHELSEA, NATIVE, ROOT, server_env

ANSWERED = re.compile(r"answering (\S+) from the cache \(mcp SDK imported: (\w+), pydantic imported: (\w+)\)")

HELP_PROBE = """
import argparse, json, sys
from thinkedit.servers.mcp import cli
parser = argparse.ArgumentParser()
commands = parser.add_subparsers()
cli.register(commands)
text = commands.choices["mcp"].format_help()
print(json.dumps({"help": text, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in {"mcp", "mcp_types", "pydantic"})}))
"""


def test_serve_mcp_help_imports_neither_the_sdk_nor_pydantic() -> None:
    done = subprocess.run([sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert probe["loaded"] == []
    assert "tiny-qwen" in probe["help"] and "--resource-links" in probe["help"]  # the packaged profiles are named


class Person:
    """Answer each review form with ``stop``, and count the forms."""

    def __init__(self) -> None:
        self.asked = 0

    async def __call__(self, context: Any, params: Any) -> ElicitResult:
        self.asked += 1
        return ElicitResult(action="accept", content={"decision": "stop"})


class Server:
    """Start sessions of one server configuration over stdio; keep each session's log."""

    def __init__(self, tmp_path: Path, *args: str, module: str = "tests.mcp_scripted_server") -> None:
        self.data_dir = tmp_path / "data"
        self.logs = tmp_path
        self.args = list(args)
        self.module = module  # the scripted backends' wrapper of the CLI, or the CLI itself
        self.count = 0

    def cached(self) -> list[Path]:
        return sorted((self.data_dir / "mcp").glob("handshake-*.json"))

    def session(self, client_info: Implementation = NATIVE, person: Person | None = None, **kw: Any) -> Client:
        self.count += 1
        self.log = self.logs / f"session-{self.count}.log"
        argv = ["-m", self.module, "serve", "mcp", "-vv", *self.args]
        params = StdioServerParameters(command=sys.executable, args=argv, env=server_env(self.data_dir), cwd=str(ROOT))
        self._errlog = open(self.log, "w")  # noqa: SIM115 - closed with the test's tmp_path
        return Client(
            stdio_client(params, errlog=self._errlog), mode="legacy", read_timeout_seconds=120,
            client_info=client_info, elicitation_callback=person or Person(), **kw,
        )

    def answered(self) -> list[tuple[str, str, str]]:
        """Return (method, mcp imported, pydantic imported) of each answer the last session got from the cache."""
        return ANSWERED.findall(self.log.read_text())


@pytest.fixture
def scripted(tmp_path: Path) -> Server:
    profile = write_profile(tmp_path / "fast.toml", delay=0, max_rounds=3)
    return Server(tmp_path, "--profile", str(profile), "--allow-root", str(ROOT))


@pytest.mark.slow  # starts server processes: seconds each
async def test_the_second_start_answers_from_the_cache_and_the_session_works(scripted: Server) -> None:
    async with scripted.session() as client:
        cold = [t.model_dump() for t in (await client.list_tools()).tools]
        cold_instructions = client.instructions
    assert scripted.answered() == []
    assert len(scripted.cached()) == 2  # initialize and tools/list, as the SDK answered them
    assert "stored the SDK's answer to initialize" in scripted.log.read_text()

    person = Person()
    async with scripted.session(person=person) as client:
        # The SDK was not imported yet when the cached handshake went out.
        assert scripted.answered()[0][:2] == ("initialize", "False")
        assert client.instructions == cold_instructions
        assert [t.model_dump() for t in (await client.list_tools()).tools] == cold
        assert [a[0] for a in scripted.answered()] == ["initialize", "tools/list"]
        # The SDK saw the replayed initialize: it knows the client can show forms (elicitation).
        result = await client.call_tool(
            "think_while_edit",
            {"image": str(CHELSEA), "instruction": "put a hat on the cat", "review": True, "wait_seconds": 60},
        )
        run = result.structured_content
        assert not result.is_error and run["status"] == "done" and run["stop_reason"] == "reviewer_stopped", run
        assert person.asked == 1 and len(run["rounds"]) == 1
    log = scripted.log.read_text()
    assert "the SDK's answer to initialize matches the cached one" in log
    assert "the SDK's answer to tools/list matches the cached one" in log
    assert len(scripted.cached()) == 2


@pytest.mark.slow  # starts server processes: seconds each
async def test_the_fast_path_imports_neither_the_sdk_nor_pydantic(tmp_path: Path) -> None:
    server = Server(tmp_path, "--profile", "tiny", module="thinkedit.servers.cli")  # as a desktop client starts it
    for _ in range(2):
        async with server.session() as client:
            assert {t.name for t in (await client.list_tools()).tools} >= {"think_while_edit", "list_models"}
    # The handshake went out before the SDK or pydantic was imported; the tool list came from the cache too
    # (by then the SDK may be loading: the main thread imports it once the handshake is answered).
    answered = server.answered()
    assert answered[0] == ("initialize", "False", "False") and [a[0] for a in answered] == ["initialize", "tools/list"]


@pytest.mark.slow  # starts server processes: seconds each
async def test_another_client_version_or_config_misses_the_cache(scripted: Server, tmp_path: Path) -> None:
    async with scripted.session() as client:
        await client.list_tools()
    async with scripted.session(client_info=Implementation(name=NATIVE.name, version="2")) as client:
        assert (await client.call_tool("list_models", {})).structured_content["profile"].endswith("fast.toml")
    # New answers: its initialize, and the tools/list the client asks before a call (to check results).
    assert scripted.answered() == [] and len(scripted.cached()) == 4
    scripted.args += ["--max-image-mb", "2"]
    async with scripted.session() as client:
        await client.list_tools()
    assert scripted.answered() == [] and len(scripted.cached()) == 6


@pytest.mark.slow  # starts server processes: seconds each
async def test_a_corrupt_cache_file_is_ignored_and_replaced(scripted: Server) -> None:
    async with scripted.session() as client:
        await client.list_tools()
    for path in scripted.cached():
        path.write_text("{truncated")
    async with scripted.session() as client:
        assert len((await client.list_tools()).tools) == 7
    assert scripted.answered() == []
    assert "which is corrupt" in scripted.log.read_text()
    assert all(json.loads(p.read_text())["result"] for p in scripted.cached())  # the SDK's answers again
    async with scripted.session() as client:
        await client.list_tools()
    assert [a[0] for a in scripted.answered()] == ["initialize", "tools/list"]


@pytest.mark.slow  # starts server processes: seconds each
async def test_a_cached_answer_the_sdk_contradicts_is_replaced(scripted: Server) -> None:
    async with scripted.session() as client:
        await client.list_tools()
        real = client.instructions
    for path in scripted.cached():
        entry = json.loads(path.read_text())
        if entry["method"] == "initialize":
            entry["result"]["instructions"] = "stale instructions"
            path.write_text(json.dumps(entry))
    async with scripted.session() as client:
        assert client.instructions == "stale instructions"  # the client got the cached answer ...
        await client.list_tools()
    assert "differs from the cached one" in scripted.log.read_text()
    async with scripted.session() as client:  # ... and the next start the SDK's
        assert client.instructions == real
        await client.list_tools()
    assert [a[0] for a in scripted.answered()] == ["initialize", "tools/list"]


@pytest.mark.slow  # starts a server process
def test_an_answer_is_cached_even_when_the_client_kills_the_server_at_once(tmp_path: Path) -> None:
    server = Server(tmp_path, "--profile", "tiny")
    request = {"jsonrpc": "2.0", "id": 7, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}}}
    proc = subprocess.Popen(
        [sys.executable, "-m", "thinkedit.servers.cli", "serve", "mcp", "--profile", "tiny"], cwd=ROOT,
        env=server_env(server.data_dir), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(request) + "\n").encode())
        proc.stdin.flush()
        answer = json.loads(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()
    assert answer["id"] == 7 and answer["result"]["serverInfo"]["name"] == "thinkedit"
    (cached,) = server.cached()
    assert json.loads(cached.read_text())["result"] == answer["result"]


@pytest.mark.slow  # starts server processes: seconds each
async def test_a_server_that_cannot_start_tells_the_client_why(tmp_path: Path) -> None:
    """Cold, ``initialize`` itself gets the reason; warm (answered from the cache), each later request does."""
    from mcp.shared.exceptions import MCPError

    data_dir = tmp_path / "data"

    def session(name: str, **env: str) -> Client:
        environment = {k: v for k, v in server_env(data_dir).items() if k != "OPENAI_API_KEY"} | env
        argv = ["-m", "thinkedit.servers.cli", "serve", "mcp", "-vv", "--profile", "openai"]
        params = StdioServerParameters(command=sys.executable, args=argv, env=environment, cwd=str(ROOT))
        errlog = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the test's tmp_path
        return Client(stdio_client(params, errlog=errlog), mode="legacy", read_timeout_seconds=120, client_info=NATIVE)

    cold = pytest.RaisesExc(MCPError, match=r"could not start: profile openai needs an API key in \$OPENAI_API_KEY")
    with pytest.RaisesGroup(cold, flatten_subgroups=True):  # the client's task group carries the error
        async with session("cold"):
            pass
    async with session("filled", OPENAI_API_KEY="sk-test") as client:  # the key is set: the SDK answers, cached
        tools = {t.name for t in (await client.list_tools()).tools}
    async with session("warm") as client:
        assert {t.name for t in (await client.list_tools()).tools} == tools  # from the cache, as before
        with pytest.raises(MCPError, match=r"could not start: .*\$OPENAI_API_KEY"):
            await client.call_tool("list_models", {})
        with pytest.raises(MCPError, match=r"could not start"):  # and again: the server stays to say so
            await client.list_resource_templates()
    assert "thinkedit: error: profile openai needs an API key" in (tmp_path / "warm.log").read_text()
