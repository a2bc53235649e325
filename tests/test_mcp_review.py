"""Human review over MCP: a run started with review=true pauses, and review_run answers it."""

from __future__ import annotations

import json
from pathlib import Path

from mcp import Client

from tests.mcp_support import check_structured, error_text
from tests.test_mcp_runs import make_server, schema_of, start_run

SCRIPT = [(3, 4, "proposed one"), (4, 4, "proposed two"), (5, 5, "proposed three"), (6, 6, "proposed four")]


async def review(client: Client, run_id: str, decision: str, instruction: str | None = None) -> dict:
    args = {"run_id": run_id, "decision": decision, "wait_seconds": 30}
    if instruction is not None:
        args["instruction"] = instruction
    result = await client.call_tool("review_run", args)
    assert not result.is_error, error_text(result)
    return check_structured(result, await schema_of(client, "review_run"))


async def test_review_pauses_and_each_decision_resumes(data_dir: Path) -> None:
    server, backends = make_server(data_dir, script=SCRIPT)
    async with Client(server, mode="legacy") as client:
        paused = await start_run(client, review=True, max_rounds=5, wait_seconds=30)
        assert paused["status"] == "awaiting_review"
        assert paused["review"]["round"] == 1 and paused["review"]["proposed_instruction"] == "proposed one"
        assert paused["review"]["semantic"] == 3 and "review_run" in paused["message"]
        run_id = paused["run_id"]

        # get_run shows the same pause without resuming anything, and so does the run's resource.
        looked = await client.call_tool("get_run", {"run_id": run_id, "wait_seconds": 0})
        assert looked.structured_content["status"] == "awaiting_review"
        resource = json.loads((await client.read_resource(f"thinkedit://runs/{run_id}")).contents[0].text)
        assert resource["review"] == looked.structured_content["review"] and resource["review"]["round"] == 1
        assert resource["message"] == looked.structured_content["message"]
        assert len(backends.editor_.calls) == 1

        second = await review(client, run_id, "approve")
        assert second["status"] == "awaiting_review" and second["review"]["round"] == 2
        assert backends.editor_.calls[-1].instruction == "proposed one"

        third = await review(client, run_id, "edit", "my own words")
        assert third["status"] == "awaiting_review" and third["review"]["round"] == 3
        assert backends.editor_.calls[-1].instruction == "my own words"

        done = await review(client, run_id, "stop")
        assert done["status"] == "done" and done["stop_reason"] == "reviewer_stopped"
        assert len(done["rounds"]) == 3 and done["final_image"] is not None and done["review"] is None


async def test_review_run_rejects_bad_answers(data_dir: Path) -> None:
    server, _ = make_server(data_dir, script=SCRIPT)
    async with Client(server, mode="legacy") as client:
        finished = await start_run(client, max_rounds=1, wait_seconds=30)
        assert finished["status"] == "done"
        not_paused = await client.call_tool("review_run", {"run_id": finished["run_id"], "decision": "approve"})
        assert not_paused.is_error and "not awaiting review" in error_text(not_paused)
        paused = await start_run(client, review=True, max_rounds=3, wait_seconds=30)
        missing = await client.call_tool("review_run", {"run_id": paused["run_id"], "decision": "edit"})
        assert missing.is_error and "instruction" in error_text(missing)
        both = await client.call_tool("review_run", {"run_id": paused["run_id"], "decision": "approve",
                                                     "instruction": "a blue hat"})
        assert both.is_error and "instruction" in error_text(both)  # refused by the input model, not dropped
        unknown = await client.call_tool("review_run", {"run_id": "nope", "decision": "stop"})
        assert unknown.is_error and "unknown run id" in error_text(unknown)
        # The server is still up and the paused run still answerable.
        done = await review(client, paused["run_id"], "stop")
        assert done["status"] == "done"


async def test_a_review_answer_for_a_round_the_run_has_left_is_refused(data_dir: Path) -> None:
    """Two reviewers: the one who answers round 1 after the other moved the run on to round 2 is told so."""
    server, backends = make_server(data_dir, script=SCRIPT)
    async with Client(server, mode="legacy") as client:
        paused = await start_run(client, review=True, max_rounds=5, wait_seconds=30)
        run_id = paused["run_id"]
        moved = await client.call_tool("review_run", {"run_id": run_id, "decision": "approve", "round": 1,
                                                      "wait_seconds": 30})
        assert moved.structured_content["review"]["round"] == 2
        late = await client.call_tool("review_run", {"run_id": run_id, "decision": "edit", "instruction": "mine",
                                                     "round": 1, "wait_seconds": 30})
        assert late.is_error and "now awaits review of round 2, not round 1" in error_text(late)
        assert [call.instruction for call in backends.editor_.calls] == ["put a hat on the cat", "proposed one"]
