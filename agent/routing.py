"""The stop rule and the routing after a critique: pure functions, tested with a table."""

from __future__ import annotations

from typing import Literal

from thinkedit.agent.settings import LoopSettings
from thinkedit.agent.state import Round, StopReason
from thinkedit.tools.types import Budget, Usage, Verdict


def stop_reason_for(
    verdict: Verdict,
    *,
    instruction_used: str,
    round_index: int,
    max_rounds: int,
    semantic_threshold: float = 8.0,
    quality_threshold: float = 8.0,
) -> StopReason | None:
    """Return why the loop should stop after this verdict, or None to refine and go on.

    Checked in order: both scores reach their thresholds; the thinker says it is satisfied;
    the refined instruction is empty or the same as the one just used; no rounds left.
    """
    if verdict.semantic >= semantic_threshold and verdict.quality >= quality_threshold:
        return "threshold_met"
    if verdict.satisfied:
        return "thinker_satisfied"
    refined = " ".join(verdict.refined_instruction.split())
    if not refined or refined.casefold() == " ".join(instruction_used.split()).casefold():
        return "instruction_unchanged"
    if round_index >= max_rounds:
        return "max_rounds"
    return None


def over_budget(spent: Usage, next_round: Usage, budget: Budget | None) -> bool:
    """Say whether a round like ``next_round`` on top of ``spent`` would exceed the budget.

    The last round's cost stands for the next one's. A dollar limit is judged only when the price
    is known (settings refuse a dollar budget without one); tokens are always counted.
    """
    if budget is None:
        return False
    if budget.usd is not None and spent.cost_usd is not None:
        if spent.cost_usd + (next_round.cost_usd or 0.0) > budget.usd + 1e-9:  # 0.10 + 0.05 fits 0.15
            return True
    return budget.tokens is not None and spent.tokens + next_round.tokens > budget.tokens
def paper_stop_reason(verdict: Verdict, *, instruction_used: str) -> StopReason | None:
    """Return why the paper's public loop stops after this verdict, or None to re-edit.

    Both scores at 8 or above; the thinker satisfied (expert protocol) or an empty answer, which
    the public code counts as satisfied; the answer equal to the prompt just used (compared as
    written, stripped). The round limit is not checked here: the paper never critiques its last edit.
    """
    if verdict.semantic >= 8 and verdict.quality >= 8:
        return "threshold_met"
    answer = verdict.refined_instruction.strip()
    if verdict.satisfied or not answer:
        return "thinker_satisfied"
    if answer == instruction_used.strip():
        return "instruction_unchanged"
    return None


def route_after_edit(settings: LoopSettings, rounds: int) -> Literal["critique", "stop"]:
    """Critique every round; in the paper's mode, the last allowed edit (``rounds`` made) goes straight to ``stop``.

    The nodes route themselves (``Command``): a node's update and its route are written together, so a run
    cancelled as a step ends never keeps the one without the other (and a resume always has a next step).
    """
    if settings.loop_mode == "paper" and rounds >= settings.max_rounds:
        return "stop"
    return "critique"


def route_after_critique(stop_reason: StopReason | None) -> Literal["refine", "stop"]:
    """Send the run to ``stop`` once the critique recorded a stop reason, else to ``refine``."""
    return "stop" if stop_reason is not None else "refine"


def select_round(rounds: list[Round], selection: Literal["best", "last"]) -> Round | None:
    """Pick the result: the highest overall score (later round on ties), or simply the last."""
    if not rounds:
        return None
    if selection == "last":
        return rounds[-1]
    scored = [r for r in rounds if r.verdict is not None]
    if not scored:
        return rounds[-1]
    return max(scored, key=lambda r: (r.verdict.overall, r.verdict.semantic, r.index))  # type: ignore[union-attr]
