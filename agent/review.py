"""Review answers in one vocabulary: ``{"decision": "approve" | "edit" | "stop", "instruction": ...}``."""

from __future__ import annotations

from typing import Any, Literal

from thinkedit.tools.errors import BadInputError

Decision = Literal["approve", "edit", "stop"]

#: What a reviewer may decide, as the review pause lists it.
DECISIONS: tuple[Decision, ...] = ("approve", "edit", "stop")


def review_answer(decision: Decision, instruction: str | None = None) -> dict[str, Any]:
    """Return the graph's resume value for a decision, so every surface resumes with the same shape.

    An instruction goes only with 'edit': with 'approve' or 'stop' it would be dropped unseen, so it is refused.
    """
    text = (instruction or "").strip()
    if decision == "edit":
        if not text:
            raise BadInputError("decision 'edit' needs an instruction")
        return {"decision": "edit", "instruction": text}
    if decision not in DECISIONS:
        raise BadInputError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
    if text:
        raise BadInputError(f"decision {decision!r} takes no instruction (it would be ignored): "
                            "to edit with your instruction, decide 'edit'")
    return {"decision": decision}


def parse_review(answer: Any) -> tuple[Decision, str | None]:
    """Read a reviewer's answer: ``{"decision", "instruction"}``, "approve", "stop" or a new instruction.

    ``{"action": ...}`` still reads as ``{"decision": ...}``: LangGraph Studio and SDK users resumed
    with it before the vocabulary was one.
    """
    if isinstance(answer, str):
        text = answer.strip()
        if text.lower() in {"approve", "stop"}:
            return text.lower(), None  # type: ignore[return-value]
        if text.lower() == "edit":  # the listed choice, not an instruction to edit with
            raise BadInputError("decision 'edit' needs an instruction: answer with the new instruction itself, "
                                "or {'decision': 'edit', 'instruction': ...}")
        if text:
            return "edit", text
    elif isinstance(answer, dict):
        decision = str(answer.get("decision", answer.get("action", ""))).lower()
        given = answer.get("instruction")
        if given is not None and not isinstance(given, str):
            raise BadInputError(f"a review answer's instruction must be text, not {type(given).__name__}")
        instruction = (given or "").strip() or None
        if decision in {"approve", "stop"}:
            review_answer(decision, instruction)  # type: ignore[arg-type]  # refuses an instruction it would drop
            return decision, None  # type: ignore[return-value]
        if decision == "edit" and instruction:
            return "edit", instruction
    raise BadInputError(
        f"review answer {answer!r} is not 'approve', 'stop', a new instruction, "
        "or {'decision': 'approve' | 'edit' | 'stop', 'instruction': ...}"
    )


def check_answer(run_id: str, status: str, pending: dict[str, Any] | None, pending_round: int | None) -> None:
    """Refuse an answer that no longer fits the run: not paused, stopped, or paused at another round than asked.

    ``status`` is the run's record's; ``pending`` the pause its checkpoint holds, both read with the
    run's lock held. "running" with a pause is a run killed between saving the pause and saying so.
    """
    if pending is None or status not in ("awaiting_review", "running"):
        state = status.replace("_", " ") if status != "running" else "not awaiting review"
        raise BadInputError(f"run {run_id} is {state}: the review answer was not applied")
    if pending_round is not None and pending.get("round") != pending_round:
        raise BadInputError(
            f"run {run_id} now awaits review of round {pending.get('round')}, not round {pending_round}: "
            "the answer was not applied"
        )
