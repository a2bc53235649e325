"""Streamable HTTP streams survive a drop: SSE events carry ids, and Last-Event-ID resumes a stream.

Spoken as a 2025-11-25 client does on the wire (httpx2 and its SSE parser, the SDK client's own
HTTP stack), against a real ``thinkedit serve mcp --transport http`` process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from httpx2 import EventSource

from tests.mcp_scripted_server import write_profile
from tests.mcp_support import CHELSEA, ROOT, http_server

pytestmark = pytest.mark.slow

VERSION = "2025-11-25"
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


class Session:
    """One MCP session spoken by hand: initialize, then requests with the session header."""

    def __init__(self, http: httpx2.AsyncClient, url: str) -> None:
        self.http, self.url, self.id = http, url, ""

    @property
    def headers(self) -> dict[str, str]:
        return {**ACCEPT, "mcp-session-id": self.id, "mcp-protocol-version": VERSION}

    async def open(self) -> None:
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
        }
        async with self.http.stream("POST", self.url, json=init, headers=ACCEPT) as response:
            assert response.status_code == 200
            self.id = response.headers["mcp-session-id"]
            events = [sse async for sse in EventSource(response)]
        assert any(e.data and json.loads(e.data).get("id") == 1 for e in events)
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await self.http.post(self.url, json=note, headers=self.headers)).status_code == 202

    def call(self, request_id: int, tool: str, arguments: dict[str, Any], token: str | None = None) -> Any:
        params: dict[str, Any] = {"name": tool, "arguments": arguments}
        if token:
            params["_meta"] = {"progressToken": token}
        body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
        return self.http.stream("POST", self.url, json=body, headers=self.headers)

    def resume(self, last_event_id: str) -> Any:
        headers = {**self.headers, "Accept": "text/event-stream", "last-event-id": last_event_id}
        return self.http.stream("GET", self.url, headers=headers)


async def read_until_response(response: Any, request_id: int, seen: list[Any]) -> dict | None:
    """Collect SSE events into ``seen`` until the response to ``request_id``; return it."""
    async for sse in EventSource(response):
        seen.append(sse)
        if sse.data:
            message = json.loads(sse.data)
            if message.get("id") == request_id and ("result" in message or "error" in message):
                return message
    return None


def progress_of(events: list[Any]) -> list[float]:
    return [json.loads(e.data)["params"]["progress"] for e in events if e.data and '"notifications/progress"' in e.data]


async def test_a_dropped_stream_resumes_with_last_event_id(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "slow.toml", delay=0.6, max_rounds=3)
    args = ["--profile", str(profile), "--allow-root", str(ROOT)]
    with http_server(tmp_path / "data", *args, log=tmp_path / "server.log", module="tests.mcp_scripted_server") as (
        base,
        _,
    ):
        async with httpx2.AsyncClient(timeout=60) as http:
            session = Session(http, f"{base}/mcp")
            await session.open()
            before: list[Any] = []
            arguments = {"image": str(CHELSEA), "instruction": "put a hat on the cat", "wait_seconds": 60}
            async with session.call(2, "think_while_edit", arguments, token="p") as response:
                async for sse in EventSource(response):
                    before.append(sse)
                    if len(progress_of(before)) == 2:
                        break  # drop the stream mid-run (the response closes here)
            # The priming event: an id, no data, and a retry hint (what the conformance suite asks for).
            assert before[0].id and before[0].data == "" and before[0].retry == 1000
            assert all(e.id for e in before), "every SSE event carries an id"
            await anyio.sleep(2.0)  # the run goes on while no one listens

            after: list[Any] = []
            async with session.resume(before[-1].id) as response:
                assert response.status_code == 200
                result = await read_until_response(response, 2, after)
    assert result is not None and "result" in result, after
    run = result["result"]["structuredContent"]
    assert run["status"] == "done" and len(run["rounds"]) == 3
    # What was missed arrives, in order, without gaps (phases 1..9 of three rounds, then 'done' at 10)
    # and without repeats (no event twice, every notification's progress above the one before).
    progress = progress_of(before) + progress_of(after)
    assert progress == [float(n) for n in range(1, 11)], progress
    ids = [e.id for e in before + after if e.data]
    assert len(ids) == len(set(ids))
    assert len(progress_of(after)) >= 5  # most of it came after the drop


async def test_a_replay_never_crosses_sessions(tmp_path: Path) -> None:
    with http_server(tmp_path / "data", "--allow-root", str(ROOT), log=tmp_path / "server.log") as (base, _):
        async with httpx2.AsyncClient(timeout=60) as http:
            mine, theirs = Session(http, f"{base}/mcp"), Session(http, f"{base}/mcp")
            await mine.open()
            await theirs.open()
            # Both sessions use request id 2: the SDK names both streams "2".
            mine_events: list[Any] = []
            async with mine.call(2, "list_models", {}) as response:
                await read_until_response(response, 2, mine_events)
            async with theirs.call(2, "get_run", {"run_id": "nosuchrun"}) as response:
                theirs_result = await read_until_response(response, 2, [])
            assert theirs_result is not None and theirs_result["result"]["isError"]

            replayed: list[Any] = []
            async with mine.resume(mine_events[0].id) as response:
                await read_until_response(response, 2, replayed)
            messages = [json.loads(e.data) for e in replayed if e.data]
            assert len(messages) == 1 and messages[0]["result"]["structuredContent"]["profile"] == "tiny"

            # Another session presenting my event id gets nothing of mine.
            stolen: list[Any] = []
            with anyio.move_on_after(5):
                async with theirs.resume(mine_events[0].id) as response:
                    await read_until_response(response, 2, stolen)
            assert not [e for e in stolen if e.data], stolen
