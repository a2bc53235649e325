"""The path of one MCP call stays short, and the architecture page walks all of it.

The server runs under coverage twice: once answering ``initialize`` and ``tools/list`` only, once also
running a tiny 2-round ``think_while_edit``. A project file counts when the second run executed a line
of it that the first did not: those are the files a newcomer follows from the handler to the editor and
the thinker and back. ``docs/architecture.md`` must name each of them in its walk of the call.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.mcp_support import CHELSEA, NATIVE, ROOT, server_env

#: At most this many of our files run for one call beyond start-up (the shape we keep).
MOST_FILES = 35
PACKAGES = ("agent", "tools", "servers", "apps")
WALK = "## The path of one MCP call"
#: What the server logs once its lifespan has opened the Runner and imported the handlers.
READY = "thinkedit MCP server ready"


async def _session(tmp: Path, data: Path, *, call: bool) -> None:
    rc = tmp / "coveragerc"
    rc.write_text("[run]\nsigterm = true\n")  # a client ends a lingering server with SIGTERM
    include = ",".join(f"{ROOT}/{p}/*" for p in PACKAGES)
    args = ["-m", "coverage", "run", f"--rcfile={rc}", f"--data-file={data}", f"--include={include}",
            "-m", "thinkedit.servers.cli", "-v", "serve", "mcp", "--profile", "tiny", "--allow-root", str(CHELSEA.parent)]
    params = StdioServerParameters(command=sys.executable, args=args, env=server_env(tmp / f"data-{data.name}"),
                                   cwd=str(ROOT))
    with open(tmp / f"{data.name}.log", "w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy", read_timeout_seconds=300,
                          client_info=NATIVE) as client:
            await client.list_tools()
            await _opened(tmp / f"{data.name}.log")
            if call:
                result = await client.call_tool(
                    "think_while_edit", {"image": str(CHELSEA), "instruction": "make the sky purple", "max_rounds": 2}
                )
                assert not result.is_error, result.content
                assert result.structured_content["status"] == "done", result.structured_content


async def _opened(log: Path, timeout: float = 300) -> None:
    """Wait until the server has opened what calls share (start-up's background work ends in the baseline)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while READY not in log.read_text(encoding="utf-8", errors="replace"):
        assert asyncio.get_running_loop().time() < deadline, log.read_text(encoding="utf-8", errors="replace")[-2000:]
        await asyncio.sleep(0.1)


def _executed(data: Path) -> dict[str, set[int]]:
    out = subprocess.run([sys.executable, "-m", "coverage", "json", f"--data-file={data}", "-o", "-", "--quiet"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return {os.path.relpath(f, ROOT): set(v["executed_lines"]) for f, v in json.loads(out.stdout)["files"].items()}


@pytest.fixture(scope="module")
def call_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    tmp = tmp_path_factory.mktemp("call-path")
    asyncio.run(_session(tmp, tmp / "startup.cov", call=False))
    asyncio.run(_session(tmp, tmp / "call.cov", call=True))
    before, after = _executed(tmp / "startup.cov"), _executed(tmp / "call.cov")
    return sorted(f for f, lines in after.items() if lines - before.get(f, set()))


def _walk_names() -> set[str]:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    walk = page.split(WALK, 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`((?:%s)/[\w/]+\.py)`" % "|".join(PACKAGES), walk))


def test_one_call_runs_code_in_few_files(call_files: list[str]) -> None:
    assert any(f.startswith("tools/editors/") for f in call_files), call_files  # the measurement saw the edit
    assert len(call_files) <= MOST_FILES, f"{len(call_files)} files: {call_files}"


def test_the_architecture_page_walks_every_file_of_the_call(call_files: list[str]) -> None:
    named = _walk_names()
    assert not set(call_files) - named, f"the walk does not name: {sorted(set(call_files) - named)}"
    missing = sorted(f for f in named if not (ROOT / f).is_file())
    assert not missing, f"the walk names files that do not exist: {missing}"
