"""Show a run's progress on stderr: a live status line on a terminal, plain lines anywhere else.

Both forms print the same line per phase (``thinkedit.agent.progress.describe_event``). On a terminal,
with ``rich`` installed (the ``cli`` extra), a status line below them says the round out of the
maximum, the phase, the elapsed time and the scores so far, redrawn in place; in logs and CI (stderr
not a terminal), or without ``rich``, the lines alone, one per phase, never redrawn.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Iterator
from typing import Any, Protocol, TextIO

from thinkedit.agent.progress import describe_event

#: Control characters that would act on a terminal (C0 and C1, DEL), all but the newline and the tab.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Return run data fit for a terminal: control characters written out (``\x1b``), so an instruction or a
    thinker's reasoning cannot move the cursor, clear the screen or retitle the window.

    (The phase lines need none of it: ``describe_event`` quotes run text with ``repr``.)
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


#: The phase each event starts.
_PHASES = {"round_started": "editing", "image_ready": "critiquing", "awaiting_review": "awaiting review",
           "run_finished": "done"}


class Display(Protocol):
    """Take the run's stream events; be entered while the run goes; pause while a person answers."""

    def __call__(self, event: dict[str, Any]) -> None: ...

    def __enter__(self) -> Display: ...

    def __exit__(self, *exc: object) -> None: ...

    def paused(self) -> contextlib.AbstractContextManager[None]: ...

    def close(self) -> None: ...


class RunView:
    """Keep what the status line shows: the round, the phase, when the run began, the scores so far."""

    def __init__(self, max_rounds: int | None, scores: list[float] | None = None) -> None:
        self.max_rounds = max_rounds
        self.round: int | None = len(scores) if scores else None
        self.phase = "starting"
        self.scores: list[float] = list(scores or [])
        self.started = time.monotonic()

    def update(self, event: dict[str, Any]) -> None:
        """Move to the phase the event starts."""
        name = event.get("event")
        if isinstance(event.get("round"), int):
            self.round = event["round"]
        if name == "verdict":
            self.scores.append(float(event["overall"]))
            self.phase = f"stopping ({event['stop_reason']})" if event.get("stop_reason") else "refining"
        elif name in _PHASES:
            self.phase = _PHASES[str(name)]

    def status(self, now: float | None = None) -> str:
        """Return e.g. ``round 2/5 · critiquing · 0:14 · scores 7.85 3.63``."""
        seconds = int((time.monotonic() if now is None else now) - self.started)
        elapsed = f"{seconds // 60}:{seconds % 60:02d}"
        of = f"/{self.max_rounds}" if self.max_rounds else ""
        where = f"round {self.round}{of}" if self.round is not None else f"round –{of}"
        scores = " ".join(f"{s:.2f}" for s in self.scores) or "–"
        return f"{where} · {self.phase} · {elapsed} · scores {scores}"


class PlainProgress:
    """Print one line per phase and nothing else (logs, CI, pipes, or no ``rich``)."""

    def __init__(self, stream: TextIO | None = None, max_rounds: int | None = None) -> None:
        self.stream = stream or sys.stderr

    def __call__(self, event: dict[str, Any]) -> None:
        line = describe_event(event)
        if line:
            print(line, file=self.stream, flush=True)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Nothing to pause: lines are never redrawn."""
        yield

    def close(self) -> None:
        """Nothing to take away."""


#: The name this printer had before the live display (kept for code that imports it).
ProgressPrinter = PlainProgress


class LiveProgress:
    """Print the phase lines above a status line that ``rich`` redraws in place (a terminal)."""

    def __init__(self, console: Any, max_rounds: int | None = None, scores: list[float] | None = None) -> None:
        from rich.live import Live
        from rich.spinner import Spinner

        self.view = RunView(max_rounds, scores)
        self._console = console
        # stderr's own writers (logs, errors) print above the status line; stdout (the result's paths) is
        # left alone, as it may be a file, and is written after close().
        self._live = Live(Spinner("dots", text=_StatusText(self.view)), console=console, refresh_per_second=4,
                          transient=True, redirect_stdout=False, redirect_stderr=True)

    def __call__(self, event: dict[str, Any]) -> None:
        self.view.update(event)
        line = describe_event(event, self.view.max_rounds)
        if line:
            self._console.print(line, markup=False, highlight=False, soft_wrap=True)
        self._live.refresh()

    def __enter__(self) -> LiveProgress:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Take the status line away for good (the run is over); the phase lines stay."""
        self._live.stop()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Take the status line away while a person types an answer, then bring it back."""
        self._live.stop()
        try:
            yield
        finally:
            self._live.start()


class _StatusText:
    """Render the view's status line afresh at each redraw (so the elapsed time moves)."""

    def __init__(self, view: RunView) -> None:
        self.view = view

    def __rich__(self) -> Any:
        from rich.text import Text

        return Text(self.view.status())


def progress_display(
    max_rounds: int | None, stream: TextIO | None = None, scores: list[float] | None = None
) -> Display:
    """Return the live display when ``stream`` (default stderr) is a terminal and ``rich`` is installed.

    ``scores`` are the overall scores of rounds already finished (a resumed run's).
    """
    stream = stream or sys.stderr
    if stream.isatty():
        try:
            from rich.console import Console
        except ModuleNotFoundError:  # a core install: plain lines
            return PlainProgress(stream)
        console = Console(file=stream, highlight=False)
        if console.is_terminal and not console.is_dumb_terminal:
            return LiveProgress(console, max_rounds, scores)
    return PlainProgress(stream)
