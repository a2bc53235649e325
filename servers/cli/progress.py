"""Print the graph's custom stream events as progress lines on stderr."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from thinkedit.agent.progress import describe_event


class ProgressPrinter:
    """Print one line per phase of each round: editing, edited, scored, and the outcome."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def __call__(self, event: dict[str, Any]) -> None:
        line = describe_event(event)
        if line:
            print(line, file=self.stream, flush=True)
