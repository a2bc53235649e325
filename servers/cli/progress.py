"""Turn the graph's custom stream events into a live progress display on stderr."""

from __future__ import annotations

import sys
from typing import Any, TextIO


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ProgressPrinter:
    """Print one line per phase of each round: editing, edited, scored, and the outcome."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def __call__(self, event: dict[str, Any]) -> None:
        line = self.format(event)
        if line:
            print(line, file=self.stream, flush=True)

    @staticmethod
    def format(event: dict[str, Any]) -> str | None:
        """Return the display line for one event (None for events not shown)."""
        name, n = event.get("event"), event.get("round")
        if name == "round_started":
            return f"round {n} · editing (seed {event['seed']}): {_short(event['instruction'])!r}"
        if name == "image_ready":
            return f"round {n} · edited in {event['edit_seconds']:.2f} s"
        if name == "verdict":
            head = (
                f"round {n} · semantic {event['semantic']:g} · quality {event['quality']:g}"
                f" · overall {event['overall']:.2f} (thought {event['think_seconds']:.2f} s)"
            )
            if event.get("stop_reason"):
                return f"{head} → stop ({event['stop_reason']})"
            return f"{head} → refine: {_short(event['refined_instruction'])!r}"
        if name == "run_finished":
            return f"done · chose round {event['best_round']} · stop reason: {event['stop_reason']}"
        if name == "awaiting_review":
            return f"round {n} · awaiting review of the proposed instruction"
        return None
