"""Ask the person to review a paused run inside the tool call, where the client can show a form.

With ``review: true`` the graph pauses before each refinement. A client that declares form
elicitation gets the question inline: on handshake-era connections (2025-11-25) by an
``elicitation/create`` request (``ctx.elicit``), on 2026-07-28 connections (no back channel) by an
``input_required`` result whose retry carries the answer. Either way the run goes on in the same
tool call. Declining, cancelling, or not answering within ``ANSWER_TIMEOUT`` leaves the run
paused (``awaiting_review``) and says so; ``review_run`` can still answer it. Clients without
elicitation get today's ``awaiting_review`` result.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from mcp.server.elicitation import render_elicitation_schema
from mcp.server.mcpserver import Context
from mcp_types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from thinkedit.agent.review import review_answer
from thinkedit.servers.mcp.lifespan import AppState
from thinkedit.servers.mcp.schemas import MAX_WAIT_SECONDS
from thinkedit.tools.errors import BadInputError, problems

log = logging.getLogger(__name__)

#: How long one question waits for the person before the run is left paused.
ANSWER_TIMEOUT = 900.0
#: The key of our one question in an ``input_required`` result.
QUESTION_KEY = "review"

Follow = Callable[[str, float], Awaitable[None]]


class ReviewForm(BaseModel):
    """The form a reviewer fills in: a decision and, to edit, the instruction to use instead."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "edit", "stop"] = Field(
        description="approve: edit again with the proposed instruction; edit: use your instruction below; "
        "stop: keep the best round so far."
    )
    #: A default in the schema, not None: typed clients (fastmcp) fill unset fields from the schema's defaults.
    instruction: str = Field(default="", description="With decision 'edit': the instruction to use next.")


def elicitation_mode(ctx: Context) -> Literal["request", "input_required"] | None:
    """Say how this client can be asked: by a request, by an input-required result, or not at all."""
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return None  # no elicitation, or URL mode only (an empty object means form, per the spec)
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return "input_required"
    return "request" if ctx.session.can_send_request else None


def question(pending: dict[str, Any]) -> str:
    """Word the question a reviewer sees for a paused run's critique."""
    return (
        f"thinkedit run {pending.get('run_id')}, round {pending.get('round')}: semantic {pending.get('semantic')}, "
        f"quality {pending.get('quality')}. {pending.get('reasoning') or ''}\n"
        f"Instruction used: {pending.get('instruction_used')!r}\n"
        f"Proposed next instruction: {pending.get('proposed_instruction')!r}\n"
        "Approve it, edit it (give your instruction), or stop and keep the best round."
    )


def decision_of(form: ReviewForm) -> Any:
    """Turn a filled form into the value the graph's review interrupt takes."""
    return review_answer(form.decision, form.instruction)


@dataclass
class InlineReview:
    """Drive a paused run through the person's answers, within one tool call's budget."""

    app: AppState
    ctx: Context
    follow: Follow
    budget: float
    notes: list[str] = field(default_factory=list)
    #: Forms asked so far in this call, earlier 2026-07-28 retries of it included (carried in their state).
    asked: int = 0

    async def settle(self, run_id: str) -> InputRequiredResult | None:
        """Ask while the run waits for review and the client can show a form; resume it on each answer.

        Returns the ``input_required`` result to send (2026-07-28 clients), or None when the run is
        no longer paused or cannot be answered here (``notes`` then says why).
        """
        mode = elicitation_mode(self.ctx)
        limit: int | None = None  # read from the run's record at the first form, once per call
        while mode is not None and self.app.jobs.awaits_review(run_id):
            pending = await self.app.runner.pending_review(run_id)
            if pending is None:
                return None
            limit = self._max_questions(run_id) if limit is None else limit
            if self.asked > limit:
                self.notes.append("Stopped asking after too many unusable answers; answer with review_run.")
                return None
            self.asked += 1
            if mode == "input_required":  # the count goes out with the question and comes back with its retry
                return self._input_required(run_id, pending)
            form = await self._ask(pending)
            if form is None or not await self._apply(run_id, form, pending.get("round")):
                return None
        return None

    async def answer(self, run_id: str, response: Any, pending_round: int | None) -> InputRequiredResult | None:
        """Apply the answer a 2026-07-28 client sent with its retry, then ask again if it pauses again.

        ``pending_round``: the round the question was about (None in a retry of an older server's).
        """
        form = self._form_of(response)
        if form is not None and await self._apply(run_id, form, pending_round):
            return await self.settle(run_id)
        return None


    def _max_questions(self, run_id: str) -> int:
        """Return the number of forms past which one call stops asking: the run's rounds, and two more."""
        return self.app.runner.registry.load(run_id).settings.max_rounds + 2

    async def _ask(self, pending: dict[str, Any]) -> ReviewForm | None:
        """Ask by an elicitation request; None (with a note) when the person gives no usable answer."""
        try:
            with anyio.fail_after(ANSWER_TIMEOUT):
                result = await self.ctx.elicit(question(pending), ReviewForm)
        except TimeoutError:
            self.notes.append(f"No review answer within {ANSWER_TIMEOUT:g} s; the run waits for review_run.")
            return None
        except (ValueError, ValidationError) as exc:
            why = problems(exc) if isinstance(exc, ValidationError) else exc
            self.notes.append(f"The review form came back unusable ({why}); the run waits for review_run.")
            return None
        except Exception as exc:  # the client refused the request: fall back to review_run
            log.info("elicitation failed: %s: %s", type(exc).__name__, exc)
            self.notes.append(f"The client could not show the review form ({exc}); the run waits for review_run.")
            return None
        if result.action != "accept":
            self.notes.append(f"The reviewer chose {result.action!r} on the form; the run waits for review_run.")
            return None
        return result.data

    def _form_of(self, response: Any) -> ReviewForm | None:
        """Read a retry's elicitation answer; None (with a note) for a refusal or a bad answer."""
        try:
            result = response if isinstance(response, ElicitResult) else ElicitResult.model_validate(response)
        except ValidationError:
            self.notes.append("The retry carried no review answer; the run waits for review_run.")
            return None
        if result.action != "accept":
            self.notes.append(f"The reviewer chose {result.action!r} on the form; the run waits for review_run.")
            return None
        try:
            return ReviewForm.model_validate(result.content or {})
        except ValidationError as exc:
            self.notes.append(f"The review form came back unusable ({problems(exc)}); the run waits for review_run.")
            return None

    async def _apply(self, run_id: str, form: ReviewForm, pending_round: int | None) -> bool:
        """Resume the run with the decision for ``pending_round`` and follow it; say whether to go on asking.

        While the form was open the run may have been answered elsewhere (review_run, the viewer) or
        cancelled: then the answer is not applied, and the caller asks about the run as it is now.
        """
        try:
            decision = decision_of(form)
        except BadInputError as exc:
            self.notes.append(f"{exc}; asked again.")
            return True  # still paused: the caller asks again
        pending = await self.app.runner.pending_review(run_id) if self.app.jobs.awaits_review(run_id) else None
        if pending is None or (pending_round is not None and pending.get("round") != pending_round):
            self.notes.append(f"The run moved on while the form was open (answered elsewhere, or cancelled); "
                              f"the answer for round {pending_round} was not applied.")
            return True
        said = f" ({decision['instruction']!r})" if form.decision == "edit" else ""
        self.notes.append(f"Reviewer: {form.decision}{said}.")
        await self.app.jobs.resume(run_id, review=decision, pending_round=pending_round)
        loop = anyio.current_time()
        await self.follow(run_id, max(0.0, self.budget))
        self.budget -= anyio.current_time() - loop
        return True

    def _input_required(self, run_id: str, pending: dict[str, Any]) -> InputRequiredResult:
        """Ask a 2026-07-28 client by result: its retry carries the answer and our state back."""
        params = ElicitRequestFormParams(
            message=question(pending), requested_schema=render_elicitation_schema(ReviewForm)
        )
        state = json.dumps({"run_id": run_id, "round": pending.get("round"), "budget": max(0.0, self.budget),
                            "notes": self.notes[-20:], "asked": self.asked})
        return InputRequiredResult(input_requests={QUESTION_KEY: ElicitRequest(params=params)}, request_state=state)


@dataclass(frozen=True)
class Retry:
    """What a 2026-07-28 retry brings back: our state (run, round asked about, budget left, notes, forms asked)
    and the answer."""

    run_id: str
    round: int | None
    budget: float
    notes: list[str]
    answer: Any
    asked: int = 0


def continuation(ctx: Context) -> Retry | None:
    """Return the retry's contents when this call is a 2026-07-28 retry carrying a review answer."""
    if ctx.request_state is None:
        return None
    try:
        state = json.loads(ctx.request_state)
        asked = state.get("round")  # absent from an older server's state
        budget = min(max(0.0, float(state["budget"])), MAX_WAIT_SECONDS)  # as sent back: no more than a call may ask
        retry = Retry(str(state["run_id"]), None if asked is None else int(asked), budget,
                      [str(n) for n in state["notes"]], None, max(0, int(state.get("asked", 0))))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadInputError("this retry's requestState is not one thinkedit issued") from exc
    return Retry(retry.run_id, retry.round, retry.budget, retry.notes, (ctx.input_responses or {}).get(QUESTION_KEY),
                 retry.asked)
