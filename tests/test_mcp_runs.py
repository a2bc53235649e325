"""The MCP server's run handling, in process with scripted backends: hand-off, cancel, restart."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import anyio
import pytest
from mcp import Client

from thinkedit.servers.mcp.server import build_server
from thinkedit.servers.mcp.lifespan import ServerConfig
from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts
from tests.mcp_support import CHELSEA, ROOT, check_structured, error_text

# Three rounds that never satisfy the thinker, so a run takes 3 slow edits.
SCRIPT = [(3, 4, "add a hat"), (4, 4, "add a red hat"), (5, 5, "add a big red hat")]


def make_server(data_dir: Path, delay: float = 0.0, script: list = SCRIPT) -> tuple[object, FakeBackends]:
    backends = FakeBackends(ScriptedEditor(delay=delay), ScriptedThinker(verdicts(*script)))
    return build_server(ServerConfig(data_dir=data_dir, roots=[ROOT]), backends=backends), backends


async def start_run(client: Client, **extra: object) -> dict:
    result = await client.call_tool(
        "think_while_edit", {"image": str(CHELSEA), "instruction": "put a hat on the cat", **extra}
    )
    assert not result.is_error, error_text(result)
    return result.structured_content


async def schema_of(client: Client, name: str) -> dict:
    return {t.name: t for t in (await client.list_tools()).tools}[name].output_schema


async def test_a_run_outlasting_the_wait_budget_is_handed_off_then_fetched(data_dir: Path) -> None:
    server, backends = make_server(data_dir, delay=0.3)
    async with Client(server, mode="legacy") as client:
        first = await start_run(client, wait_seconds=0.1)
        assert first["status"] == "running" and "get_run" in first["message"]
        notes: list[tuple[float, str]] = []

        async def progress(p: float, total: float | None, message: str | None) -> None:
            notes.append((p, message or ""))

        done = await client.call_tool(
            "get_run", {"run_id": first["run_id"], "wait_seconds": 30}, progress_callback=progress
        )
        run = check_structured(done, await schema_of(client, "get_run"))
        assert run["status"] == "done" and run["stop_reason"] == "max_rounds" and len(run["rounds"]) == 3
        assert notes and notes[-1][1].startswith("done")
        assert any(b.type == "image" for b in done.content)
        # The run's files were written beside the data and are served as resources.
        assert Path(run["final_image"]["path"]).is_file()
        png = await client.read_resource(run["final_image"]["resource_uri"])
        assert png.contents[0].mime_type == "image/png"
    assert len(backends.editor_.calls) == 3


async def test_cancel_run_stops_a_running_run(data_dir: Path) -> None:
    server, backends = make_server(data_dir, delay=0.5)
    async with Client(server, mode="legacy") as client:
        run = await start_run(client, wait_seconds=0.2)
        cancelled = await client.call_tool("cancel_run", {"run_id": run["run_id"]})
        assert cancelled.structured_content["status"] == "cancelled"
        await anyio.sleep(1.0)
        again = await client.call_tool("get_run", {"run_id": run["run_id"], "wait_seconds": 0})
        assert again.structured_content["status"] == "cancelled"
    assert len(backends.editor_.calls) <= 1  # stopped in the first round


async def test_client_cancellation_stops_the_run(data_dir: Path) -> None:
    server, backends = make_server(data_dir, delay=0.5)
    async with Client(server, mode="legacy") as client:
        started = anyio.Event()

        async def progress(p: float, total: float | None, message: str | None) -> None:
            started.set()

        async with anyio.create_task_group() as tg:

            async def call() -> None:
                await client.call_tool(
                    "think_while_edit",
                    {"image": str(CHELSEA), "instruction": "put a hat on the cat", "wait_seconds": 30},
                    progress_callback=progress,
                )

            tg.start_soon(call)
            with anyio.fail_after(10):
                await started.wait()
            tg.cancel_scope.cancel()
        await anyio.sleep(1.5)
        records = server_records(data_dir)
        assert [r["status"] for r in records] == ["cancelled"]
    assert len(backends.editor_.calls) <= 1


def server_records(data_dir: Path) -> list[dict]:
    import json

    return [json.loads(p.read_text()) for p in sorted((data_dir / "runs").glob("*.json"))]


async def test_a_restart_keeps_runs_and_resumes_interrupted_ones(data_dir: Path) -> None:
    server, first_backends = make_server(data_dir, delay=0.4)
    async with Client(server, mode="legacy") as client:
        run = await start_run(client, wait_seconds=0)
        while True:  # let round 1 finish, then stop the server in the middle of the run
            look = await client.call_tool("get_run", {"run_id": run["run_id"], "wait_seconds": 0.2})
            assert look.structured_content["status"] == "running"
            if any(r["semantic"] is not None for r in look.structured_content["rounds"]):
                break
    # The first server stopped: its run is marked for resumption, its finished steps kept.
    # ...and left the checkpoint database unlocked for the next server.
    probe = sqlite3.connect(data_dir / "checkpoints.sqlite", timeout=0)
    probe.execute("BEGIN IMMEDIATE")
    probe.execute("ROLLBACK")
    probe.close()
    (record,) = server_records(data_dir)
    assert record["status"] == "running" and "interrupted" in record["error"]

    server, second_backends = make_server(data_dir, delay=0.0, script=SCRIPT[1:])
    async with Client(server, mode="legacy") as client:
        look = await client.call_tool("get_run", {"run_id": run["run_id"], "wait_seconds": 0, "resume": False})
        assert "resume" in look.structured_content["message"]
        kept = len(look.structured_content["rounds"])
        assert kept >= 1
        done = await client.call_tool("get_run", {"run_id": run["run_id"], "wait_seconds": 30})
        assert done.structured_content["status"] == "done", done.structured_content
        assert [r["index"] for r in done.structured_content["rounds"]] == [1, 2, 3]
    # Edits that finished before the restart were not redone after it.
    assert len(second_backends.editor_.calls) == 3 - kept


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"image": "/etc/hostname", "instruction": "x"}, "outside the allowed roots"),
        ({"image": str(CHELSEA), "instruction": "x", "max_rounds": 0}, "max_rounds"),
        ({"image": str(CHELSEA), "instruction": "x", "editor": "nope"}, "unknown editor 'nope'"),
        ({"image": str(CHELSEA), "instruction": "x", "colour": "red"}, "colour"),
    ],
)
async def test_bad_arguments_are_tool_errors(data_dir: Path, arguments: dict, problem: str) -> None:
    server, _ = make_server(data_dir)
    async with Client(server, mode="legacy") as client:
        assert problem in error_text(await client.call_tool("think_while_edit", arguments))
        assert "unknown run id" in error_text(await client.call_tool("get_run", {"run_id": "nope"}))
        assert (await client.call_tool("list_models", {})).structured_content["profile"] == "tiny"


async def test_two_servers_on_one_data_dir_never_drive_the_same_run(data_dir: Path) -> None:
    owner, owner_backends = make_server(data_dir, delay=0.3)
    other, other_backends = make_server(data_dir)
    async with Client(owner, mode="legacy") as a, Client(other, mode="legacy") as b:
        run = await start_run(a, wait_seconds=0.1)
        look = await b.call_tool("get_run", {"run_id": run["run_id"], "wait_seconds": 0})
        assert look.structured_content["status"] == "running" and "another" in look.structured_content["message"]
        assert "another" in error_text(await b.call_tool("cancel_run", {"run_id": run["run_id"]}))
        done = await b.call_tool("get_run", {"run_id": run["run_id"], "wait_seconds": 30})
        assert done.structured_content["status"] == "done"
    assert len(owner_backends.editor_.calls) == 3 and not other_backends.editor_.calls


async def test_a_failing_backend_ends_the_run_with_an_error_result(data_dir: Path) -> None:
    from thinkedit.tools.errors import BackendError

    backends = FakeBackends(
        ScriptedEditor(), ScriptedThinker(verdicts(*SCRIPT), failures=[BackendError("thinker exploded")])
    )
    server = build_server(ServerConfig(data_dir=data_dir, roots=[ROOT]), backends=backends)
    async with Client(server, mode="legacy") as client:
        result = await client.call_tool("think_while_edit", {"image": str(CHELSEA), "instruction": "hat"})
        assert "thinker exploded" in error_text(result)
        assert result.structured_content["status"] == "error"


async def test_an_inline_image_is_not_kept_as_the_runs_name_however_it_is_padded(data_dir: Path) -> None:
    import base64

    from thinkedit.agent.runs import RunRegistry

    server, _ = make_server(data_dir)
    inline = "  \n data:image/png;base64," + base64.b64encode(CHELSEA.read_bytes()).decode()
    async with Client(server, mode="legacy") as client:
        run = await start_run(client, max_rounds=1, wait_seconds=30, image=inline)
    record = RunRegistry.for_data(data_dir).load(run["run_id"])
    assert run["status"] == "done" and record.source_name == ""  # not megabytes of base64 as a file name


async def test_a_server_urls_password_stays_on_the_server(data_dir: Path) -> None:
    """``list_models`` and a recorded trajectory name the editor's and thinker's servers, never a proxy's password."""
    from thinkedit.agent.recording import trajectory_record
    from thinkedit.agent.settings import resolve_settings

    proxy = "http://alice:S3cretProxyPass@127.0.0.1:9/v1"
    backends = FakeBackends(ScriptedEditor(), ScriptedThinker(verdicts(*SCRIPT)))
    server = build_server(ServerConfig(data_dir=data_dir, roots=[ROOT], editor_url=proxy, thinker_url=proxy),
                          backends=backends)
    async with Client(server, mode="legacy") as client:
        models = (await client.call_tool("list_models", {})).structured_content
    assert models["editor"]["base_url"] == models["thinker"]["base_url"] == "http://alice:***@127.0.0.1:9/v1"
    state = await stored_run_with(data_dir, resolve_settings("tiny", data_dir=str(data_dir), editor_url=proxy,
                                                             thinker_url=proxy, max_rounds=1))
    record = trajectory_record(state)
    assert record["editor"]["base_url"] == record["thinker"]["base_url"] == "http://alice:***@127.0.0.1:9/v1"
    assert "S3cretProxyPass" not in json.dumps(record)


async def stored_run_with(data_dir: Path, settings: object) -> object:
    from thinkedit.agent.runs import Runner

    backends = FakeBackends(ScriptedEditor(), ScriptedThinker(verdicts(*SCRIPT)))
    async with Runner.open(data_dir, backends=backends) as runner:
        return await runner.start(runner.prepare(CHELSEA, "put a hat on the cat", settings))


async def test_run_settings_a_call_cannot_have_are_refused_without_echoing_the_settings(data_dir: Path) -> None:
    server, backends = make_server(data_dir)
    async with Client(server, mode="legacy") as client:
        priced = await client.call_tool(
            "think_while_edit", {"image": str(CHELSEA), "instruction": "put a hat on the cat", "budget": "$1"}
        )
    text = error_text(priced)
    assert priced.is_error and "invalid run settings" in text and "a dollar budget needs a price" in text
    assert "input_value" not in text and "pydantic.dev" not in text and "'profile'" not in text, text
    assert backends.editor_.calls == []
