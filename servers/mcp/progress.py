"""Turn the graph's stream events into MCP progress notifications (one per phase of a round)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from thinkedit.agent.progress import describe_event

#: Phases of a round, in order; progress counts phases done.
PHASES = {"round_started": 0, "image_ready": 1, "verdict": 2}
ReportFn = Callable[[float, float | None, str | None], Awaitable[None]]


def progress_of(event: dict[str, Any], max_rounds: int) -> tuple[float, float, str] | None:
    """Return (progress, total, message) for one event, or None for events not reported.

    Progress counts phases: three per round (editing, edited, scored), out of three per allowed
    round; the finishing event sets progress to the total, as the run may stop early.
    """
    total = float(3 * max_rounds)
    line = describe_event(event, max_rounds)
    if line is None:
        return None
    name = event.get("event")
    if name == "run_finished":
        return total, total, line
    if name in PHASES and isinstance(event.get("round"), int):
        return float(3 * (event["round"] - 1) + PHASES[name] + 1), total, line
    return None


class ProgressReporter:
    """Send one progress notification per reported event; the count never goes backwards."""

    def __init__(self, report: ReportFn, max_rounds: int) -> None:
        self.report = report
        self.max_rounds = max_rounds
        self.last = 0.0
        self.sent = 0

    async def __call__(self, event: dict[str, Any]) -> None:
        """Report one event (events that are not phases are skipped)."""
        item = progress_of(event, self.max_rounds)
        if item is None:
            return
        progress, total, message = item
        self.last = max(self.last, progress)
        self.sent += 1
        await self.report(self.last, total, message)
