"""Review by elicitation: a client that can show a form answers the review inside the same tool call.

Both ways the SDK client asks a person: an ``elicitation/create`` request on a 2025-11-25
(handshake) session, and an ``input_required`` result on a 2026-07-28 connection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import ElicitResult, ErrorData

from tests.mcp_scripted_server import write_profile
from tests.mcp_support import CHELSEA, ROOT, check_structured, error_text, http_server
from thinkedit.servers.mcp import review
from tests.test_mcp_runs import make_server, schema_of

SCRIPT = [(3, 4, "proposed one"), (4, 4, "proposed two"), (5, 5, "proposed three"), (6, 6, "proposed four")]
MODES = ["legacy", "2026-07-28"]


class Person:
    """Answer each review form from a script, and remember what each form asked."""

    def __init__(self, *answers: ElicitResult | ErrorData) -> None:
        self.answers = list(answers)
        self.asked: list[Any] = []

    async def __call__(self, context: Any, params: Any) -> ElicitResult | ErrorData:
        self.asked.append(params)
        return self.answers.pop(0)


def accept(decision: str, instruction: str | None = None) -> ElicitResult:
    content = {"decision": decision} | ({"instruction": instruction} if instruction else {})
    return ElicitResult(action="accept", content=content)


async def run(client: Client, **extra: object) -> dict:
    result = await client.call_tool(
        "think_while_edit",
        {"image": str(CHELSEA), "instruction": "put a hat on the cat", "review": True, "wait_seconds": 30, **extra},
    )
    assert not result.is_error, error_text(result)
    return check_structured(result, await schema_of(client, "think_while_edit"))


@pytest.mark.parametrize("mode", MODES)
async def test_approve_then_a_replacement_finish_in_the_same_call(data_dir: Path, mode: str) -> None:
    server, backends = make_server(data_dir, script=SCRIPT)
    person = Person(accept("approve"), accept("edit", "my own words"))
    async with Client(server, mode=mode, elicitation_callback=person) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else mode)
        done = await run(client, max_rounds=3)
    assert done["status"] == "done" and done["stop_reason"] == "max_rounds" and len(done["rounds"]) == 3
    assert [c.instruction for c in backends.editor_.calls] == ["put a hat on the cat", "proposed one", "my own words"]
    # The form: one required field 'decision' with the three choices, an optional instruction.
    form = person.asked[0]
    assert form.requested_schema["required"] == ["decision"]
    assert form.requested_schema["properties"]["decision"]["enum"] == ["approve", "edit", "stop"]
    assert "instruction" in form.requested_schema["properties"]
    assert "proposed one" in form.message and len(person.asked) == 2
    assert "Reviewer: approve." in done["message"] and "my own words" in done["message"]


@pytest.mark.parametrize("mode", MODES)
async def test_stop_keeps_the_best_round_so_far(data_dir: Path, mode: str) -> None:
    server, backends = make_server(data_dir, script=SCRIPT)
    person = Person(accept("approve"), accept("stop"))
    async with Client(server, mode=mode, elicitation_callback=person) as client:
        done = await run(client, max_rounds=5)
    assert done["status"] == "done" and done["stop_reason"] == "reviewer_stopped"
    assert len(done["rounds"]) == 2 and done["final_image"] is not None and len(backends.editor_.calls) == 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("refusal", ["decline", "cancel"])
async def test_declining_leaves_the_run_paused_for_review_run(data_dir: Path, mode: str, refusal: str) -> None:
    server, backends = make_server(data_dir, script=SCRIPT)
    person = Person(accept("approve"), ElicitResult(action=refusal))
    async with Client(server, mode=mode, elicitation_callback=person) as client:
        paused = await run(client, max_rounds=5)
        assert paused["status"] == "awaiting_review" and paused["review"]["round"] == 2
        assert f"chose {refusal!r}" in paused["message"] and "review_run" in paused["message"]
        assert len(backends.editor_.calls) == 2
        # The run is intact: review_run answers it (the person is asked again at the next pause).
        person.answers.append(accept("stop"))
        result = await client.call_tool("review_run", {"run_id": paused["run_id"], "decision": "approve"})
        done = result.structured_content
    assert done["status"] == "done" and done["stop_reason"] == "reviewer_stopped" and len(done["rounds"]) == 3


async def test_an_edit_without_instruction_is_asked_again(data_dir: Path) -> None:
    server, backends = make_server(data_dir, script=SCRIPT)
    person = Person(accept("edit"), accept("edit", "second try"))
    async with Client(server, mode="legacy", elicitation_callback=person) as client:
        done = await run(client, max_rounds=2)
    assert done["status"] == "done" and len(person.asked) == 2
    assert backends.editor_.calls[-1].instruction == "second try" and "needs an instruction" in done["message"]


@pytest.mark.parametrize("mode", MODES)  # on 2026-07-28 the count goes with each question and comes back
async def test_a_person_who_never_gives_a_usable_answer_is_asked_a_bounded_number_of_times(data_dir: Path,
                                                                                            mode: str) -> None:
    server, backends = make_server(data_dir, script=SCRIPT)
    person = Person(*[accept("edit")] * 10)  # 'edit' with no instruction, every time
    async with Client(server, mode=mode, elicitation_callback=person) as client:
        paused = await run(client, max_rounds=2)
    # The run's rounds and two more, then one last form, then the run waits for review_run, intact.
    assert len(person.asked) == 2 + 2 + 1 and len(backends.editor_.calls) == 1
    assert paused["status"] == "awaiting_review" and "Stopped asking after too many" in paused["message"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_without_elicitation_gets_awaiting_review(data_dir: Path, mode: str) -> None:
    server, backends = make_server(data_dir, script=SCRIPT)
    async with Client(server, mode=mode) as client:
        paused = await run(client, max_rounds=3)
    assert paused["status"] == "awaiting_review" and paused["review"]["proposed_instruction"] == "proposed one"
    assert len(backends.editor_.calls) == 1 and "review_run" in paused["message"]


async def test_a_client_error_on_the_form_falls_back_to_review_run(data_dir: Path) -> None:
    server, _ = make_server(data_dir, script=SCRIPT)
    person = Person(ErrorData(code=-32600, message="no UI here"))
    async with Client(server, mode="legacy", elicitation_callback=person) as client:
        paused = await run(client, max_rounds=3)
    assert paused["status"] == "awaiting_review" and "could not show the review form" in paused["message"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
async def test_review_by_elicitation_over_http(tmp_path: Path, mode: str) -> None:
    """The same over a real transport: the form rides the call's SSE stream, or its input_required retry."""
    profile = write_profile(tmp_path / "quick.toml", delay=0.05, max_rounds=3)
    args = ["--profile", str(profile), "--allow-root", str(ROOT)]
    person = Person(accept("edit", "over the wire"), accept("stop"))
    with http_server(tmp_path / "data", *args, log=tmp_path / "server.log", module="tests.mcp_scripted_server") as (
        base,
        _,
    ):
        async with Client(f"{base}/mcp", mode=mode, elicitation_callback=person, read_timeout_seconds=120) as client:
            done = await run(client)
    assert done["status"] == "done" and done["stop_reason"] == "reviewer_stopped" and len(done["rounds"]) == 2
    assert done["rounds"][1]["instruction"] == "over the wire" and len(person.asked) == 2


async def test_no_answer_in_time_leaves_the_run_paused(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(review, "ANSWER_TIMEOUT", 0.5)
    server, _ = make_server(data_dir, script=SCRIPT)

    async def away(context: Any, params: Any) -> ElicitResult:
        await anyio.sleep(30)
        return accept("approve")

    async with Client(server, mode="legacy", elicitation_callback=away) as client:
        with anyio.fail_after(20):
            paused = await run(client, max_rounds=3)
    assert paused["status"] == "awaiting_review" and "No review answer within 0.5 s" in paused["message"]


class TypedClient:
    """Answer as a typed client does (fastmcp's ``response_type``): every field the form names, unset ones
    from the schema's defaults (None where it gives none), checked against the schema before sending."""

    def __init__(self, decision: str) -> None:
        self.decision = decision
        self.schemas: list[dict] = []

    async def __call__(self, context: Any, params: Any) -> ElicitResult:
        import jsonschema

        schema = params.requested_schema
        self.schemas.append(schema)
        content = {name: prop.get("default") for name, prop in schema["properties"].items()} | {"decision": self.decision}
        jsonschema.validate(content, schema)  # a typed client refuses to send what the form does not accept
        return ElicitResult(action="accept", content=content)


@pytest.mark.parametrize("mode", MODES)
async def test_a_typed_clients_answer_validates(data_dir: Path, mode: str) -> None:
    server, _ = make_server(data_dir, script=SCRIPT)
    typed = TypedClient("stop")
    async with Client(server, mode=mode, elicitation_callback=typed) as client:
        done = await run(client, max_rounds=3)
    assert done["status"] == "done" and done["stop_reason"] == "reviewer_stopped" and len(done["rounds"]) == 1
    instruction = typed.schemas[0]["properties"]["instruction"]
    assert instruction["type"] == "string" and instruction["default"] == ""


@pytest.mark.parametrize("mode", MODES)
async def test_an_answer_to_a_run_cancelled_while_the_form_was_open_is_not_applied(data_dir: Path, mode: str) -> None:
    from thinkedit.agent.runs import RunRegistry

    server, backends = make_server(data_dir, script=SCRIPT)

    async def cancelled_meanwhile(context: Any, params: Any) -> ElicitResult:
        run_id = params.message.split("thinkedit run ", 1)[1].split(",", 1)[0]
        async with Client(server, mode=mode) as other:  # another client cancels the paused run ...
            stopped = await other.call_tool("cancel_run", {"run_id": run_id})
            assert stopped.structured_content["status"] == "cancelled"
        assert RunRegistry.for_data(data_dir).load(run_id).status == "cancelled"
        return accept("approve")  # ... before the person approves it

    async with Client(server, mode=mode, elicitation_callback=cancelled_meanwhile) as client:
        result = await run(client, max_rounds=3)
    assert result["status"] == "cancelled" and len(backends.editor_.calls) == 1  # not revived by the late answer
    assert "moved on while the form was open" in result["message"] and "Reviewer: approve" not in result["message"]


@pytest.mark.parametrize("mode", MODES)  # on 2026-07-28 the answer comes back in a retry of the call
async def test_cancelling_the_call_after_an_inline_answer_stops_the_run(data_dir: Path, mode: str) -> None:
    from thinkedit.agent.runs import RunRegistry

    server, backends = make_server(data_dir, delay=0.5, script=SCRIPT)
    answered = anyio.Event()

    async def approve(context: Any, params: Any) -> ElicitResult:
        answered.set()
        return accept("approve")

    async with Client(server, mode=mode, elicitation_callback=approve) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: run(client, max_rounds=5))
            with anyio.fail_after(20):
                await answered.wait()
            await anyio.sleep(0.2)  # round 2's edit is under way, driven by the answer
            tg.cancel_scope.cancel()
        await anyio.sleep(1.5)
        (record,) = RunRegistry.for_data(data_dir).list()
    assert record.status == "cancelled" and len(backends.editor_.calls) == 2  # round 2 was its last


async def test_cancelling_the_call_while_its_form_is_open_stops_the_paused_run(data_dir: Path) -> None:
    """docs/mcp.md: cancelling think_while_edit stops the run it started, a run paused on an open form too.

    (An elicitation request holds the call open; on 2026-07-28 the call has returned its question by then.)
    """
    mode = "legacy"
    from thinkedit.agent.runs import RunRegistry

    server, backends = make_server(data_dir, script=SCRIPT)
    asked = anyio.Event()

    async def hold_the_form(context: Any, params: Any) -> ElicitResult:
        asked.set()
        await anyio.sleep(60)  # the person has not answered yet
        return accept("approve")

    async with Client(server, mode=mode, elicitation_callback=hold_the_form) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: run(client, max_rounds=5))
            with anyio.fail_after(20):
                await asked.wait()
            tg.cancel_scope.cancel()
        with anyio.fail_after(10):
            while (record := RunRegistry.for_data(data_dir).list()[0]).status == "awaiting_review":
                await anyio.sleep(0.05)
    assert record.status == "cancelled" and len(backends.editor_.calls) == 1
