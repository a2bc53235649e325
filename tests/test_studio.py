"""`langgraph dev` serves the graph; runs go through langgraph_sdk, as Studio drives them."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from langgraph_sdk import get_client

from tests.conftest import EXAMPLES
from tests.mcp_support import http_session
from tests.procs import ROOT, free_port, server

pytestmark = pytest.mark.slow
GRAPH = "think_while_edit"
# Thresholds nobody reaches, so the loop always goes on to refine (and review) until max_rounds.
KEEP_GOING = {"semantic_threshold": 10, "quality_threshold": 10}


@pytest.fixture(scope="module")
def studio_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's log: what it says about our checkpoints (deserialization warnings) lands here."""
    return tmp_path_factory.mktemp("studio") / "langgraph-dev.log"


@pytest.fixture(scope="module")
def studio(studio_log: Path) -> Iterator[str]:
    langgraph = shutil.which("langgraph", path=str(Path(sys.executable).parent)) or shutil.which("langgraph")
    if langgraph is None:
        pytest.fail("langgraph-cli is not installed (it is part of the dev extra)")
    port = free_port()
    # Strict deserialization, as LangGraph will have it by default: checkpoints must hold no types of ours.
    # Files a run names must lie in the server's folders: its cwd, its data dir, and those allowed here.
    env = dict(os.environ, THINKEDIT_DATA_DIR=str(studio_log.parent / "data"), THINKEDIT_PROFILE="tiny",
               THINKEDIT_ALLOW_ROOT=str(studio_log.parent / "allowed"),
               LANGGRAPH_CLI_NO_ANALYTICS="1", PYTHONPATH=str(ROOT), LANGGRAPH_STRICT_MSGPACK="true")
    cmd = [langgraph, "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)]
    with server(cmd, f"http://127.0.0.1:{port}/ok", env=env, log=studio_log, timeout=120):
        yield f"http://127.0.0.1:{port}"


def run_input(**settings) -> dict:
    return {
        "image": str(EXAMPLES / "chelsea.png"),
        "instruction": "put a red party hat on the cat",
        "overrides": {"max_rounds": 2, **KEEP_GOING, **settings},
    }


async def test_run_from_sdk_streams_and_keeps_state(studio: str) -> None:
    client = get_client(url=studio)
    assistant = (await client.assistants.search(graph_id=GRAPH))[0]
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    assert {"image", "instruction", "overrides"} <= set(schemas["input_schema"]["properties"])
    thread = await client.threads.create()
    custom, updates = [], []
    async for part in client.runs.stream(thread["thread_id"], GRAPH, input=run_input(), stream_mode=["updates", "custom"]):
        if part.event == "custom":
            custom.append(part.data)
        elif part.event == "updates":
            updates.append(part.data)
        assert part.event != "error", part.data
    assert [e["event"] for e in custom] == ["round_started", "image_ready", "verdict"] * 2 + ["run_finished"]
    assert [next(iter(u)) for u in updates] == ["prepare", "edit", "critique", "refine", "edit", "critique", "stop"]

    state = (await client.threads.get_state(thread["thread_id"]))["values"]
    assert state["status"] == "done" and state["stop_reason"] == "max_rounds"
    assert state["run_id"] == thread["thread_id"]
    assert [r["index"] for r in state["rounds"]] == [1, 2]
    for r in state["rounds"]:
        assert (r["image"]["width"], r["image"]["height"]) == (451, 300)
        assert 0 <= r["verdict"]["semantic"] <= 10 and r["verdict"]["refined_instruction"] is not None
    assert state["rounds"][1]["instruction"] == state["rounds"][0]["verdict"]["refined_instruction"]
    assert state["final_image"]["sha256"] in {r["image"]["sha256"] for r in state["rounds"]}


async def test_review_pauses_and_resumes_with_each_decision(studio: str) -> None:
    client = get_client(url=studio)
    thread = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread, GRAPH, input=run_input(max_rounds=5, review=True))
    state = await client.threads.get_state(thread)
    assert state["next"] == ["refine"]
    pending = state["tasks"][0]["interrupts"][0]["value"]
    assert pending["round"] == 1 and "proposed_instruction" in pending

    await client.runs.wait(thread, GRAPH, command={"resume": "approve"})
    state = await client.threads.get_state(thread)
    rounds = state["values"]["rounds"]
    assert len(rounds) == 2 and rounds[1]["instruction"] == pending["proposed_instruction"]

    await client.runs.wait(thread, GRAPH, command={"resume": {"decision": "edit", "instruction": "a tall red hat"}})
    state = await client.threads.get_state(thread)
    assert [r["instruction"] for r in state["values"]["rounds"]][-1] == "a tall red hat"
    assert state["tasks"][0]["interrupts"][0]["value"]["decisions"] == ["approve", "edit", "stop"]

    # The vocabulary Studio users resumed with before: still read.
    await client.runs.wait(thread, GRAPH, command={"resume": {"action": "edit", "instruction": "a red top hat"}})
    state = await client.threads.get_state(thread)
    assert [r["instruction"] for r in state["values"]["rounds"]][-1] == "a red top hat"

    await client.runs.wait(thread, GRAPH, command={"resume": {"decision": "stop"}})
    state = await client.threads.get_state(thread)
    assert state["next"] == []
    assert state["values"]["status"] == "done" and state["values"]["stop_reason"] == "reviewer_stopped"
    assert len(state["values"]["rounds"]) == 4


async def test_a_reviewed_run_resumes_under_strict_deserialization(studio: str, studio_log: Path) -> None:
    client = get_client(url=studio)
    thread = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread, GRAPH, input=run_input(max_rounds=2, review=True))
    result = await client.runs.wait(thread, GRAPH, command={"resume": {"decision": "approve"}})
    assert result["status"] == "done" and [r["index"] for r in result["rounds"]] == [1, 2]
    state = await client.threads.get_state(thread)  # the server decodes every checkpoint channel
    assert state["values"]["settings"]["max_rounds"] == 2 and state["values"]["source"]["width"] == 451
    history = await client.threads.get_history(thread, limit=20)  # and every earlier checkpoint
    assert len(history) > 5 and history[0]["values"]["status"] == "done"
    log = studio_log.read_text()
    assert "unregistered type" not in log and "Blocked deserialization" not in log, log[-2000:]


async def test_bad_input_fails_the_run_not_the_server(studio: str) -> None:
    client = get_client(url=studio)
    thread = (await client.threads.create())["thread_id"]
    with pytest.raises(Exception, match="image not found"):
        await client.runs.wait(thread, GRAPH, input={"image": str(ROOT / "no-such-file.png"), "instruction": "x"})
    # A client names paths on the server's machine: only its working directory and data dir are read.
    elsewhere = (await client.threads.create())["thread_id"]
    with pytest.raises(Exception, match="outside the folders this server reads from"):
        await client.runs.wait(elsewhere, GRAPH, input={"image": "/etc/hostname", "instruction": "x"})
    ok = await client.threads.create()
    result = await client.runs.wait(ok["thread_id"], GRAPH, input=run_input(max_rounds=1))
    assert result["status"] == "done"


async def test_a_backend_error_reaches_the_sdk_caller_with_its_message(studio: str, studio_log: Path) -> None:
    # An editor server that is not there: the run fails after its retries, and the SDK caller is told why
    # (LangGraph Server passes on the messages of RuntimeError and ValueError, and hides the rest).
    port = free_port()
    profile = studio_log.parent / "allowed" / "unreachable.toml"  # a profile file in a folder the server allows
    profile.parent.mkdir(exist_ok=True)
    profile.write_text(
        (ROOT / "tools" / "profiles" / "tiny.toml").read_text().replace(
            'backend = "diffusers"', f'backend = "openai-images"\nbase_url = "http://127.0.0.1:{port}/v1"'
        )
    )
    client = get_client(url=studio)
    thread = (await client.threads.create())["thread_id"]
    with pytest.raises(Exception, match=f"cannot reach the editor server at http://127.0.0.1:{port}/v1"):
        await client.runs.wait(thread, GRAPH, input=run_input(profile=str(profile), max_rounds=1))


async def test_the_servers_mcp_tool_takes_the_users_input_and_answers_json(studio: str) -> None:
    # A user's own assistant for the graph (made in Studio, review on) does not become the tool everyone gets.
    await get_client(url=studio).assistants.create(GRAPH, context={"review": True}, name="my reviewed variant")
    async with http_session(studio) as mcp:
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        tool = tools[GRAPH]
        assert tool.description.startswith("Edit an image following an instruction") and tool.title == GRAPH
        assert set(tool.input_schema["properties"]) == {"image", "instruction", "references", "overrides"}
        assert set(tool.input_schema["required"]) == {"image", "instruction"}
        result = await mcp.call_tool(GRAPH, run_input(max_rounds=1))
        missing = await mcp.call_tool(GRAPH, {"image": str(ROOT / "no-such-file.png"), "instruction": "x"})
        outside = await mcp.call_tool(GRAPH, {"image": "/etc/hostname", "instruction": "x"})
        unnamed = await mcp.call_tool(GRAPH, {"instruction": "x"})
        paused = await mcp.call_tool(GRAPH, run_input(max_rounds=2, review=True))
    assert not result.is_error, result
    text = [block.text for block in result.content if block.type == "text"]
    answer = json.loads(text[-1])
    assert answer == result.structured_content
    assert answer["status"] == "done" and [r["index"] for r in answer["rounds"]] == [1]
    assert "settings" not in answer and answer["final_image"]["width"] == 451
    assert missing.is_error and "image not found" in missing.content[0].text
    assert outside.is_error and "outside the folders" in outside.content[0].text, outside
    assert unnamed.is_error and "image" in unnamed.content[0].text, unnamed
    # A run that pauses for review cannot go on in a stateless call: said so, not returned as a result.
    assert paused.is_error and "paused for review" in paused.content[0].text, paused
