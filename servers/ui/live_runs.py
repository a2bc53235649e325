"""Runs the gallery drives: asyncio tasks on the shared Runner, their latest progress line, change signals.

A run started or reviewed from the page runs in the gallery's process; its stream events wake the
pages that follow it (server-sent events). Runs driven by other processes (the CLI, the MCP
server) are followed by re-reading their checkpoints.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from thinkedit.agent.progress import describe_event
from thinkedit.agent.runs import Runner, RunRecord
from thinkedit.agent.tasks import RunTasks
from thinkedit.tools.errors import BadInputError


#: Written into the record of a run the gallery stopped on its way out.
INTERRUPTED = "interrupted: the gallery stopped while the run was going; continue it with thinkedit resume {run_id}"


class GalleryJobs(RunTasks):
    """Own the gallery's live run tasks and tell followers when a run changed."""

    def __init__(self, runner: Runner, outputs_root: Path) -> None:
        super().__init__(runner, outputs_root, INTERRUPTED)
        #: The latest progress line of each run this process drives, and of each it left paused for
        #: review (the page shows it beside the form); a run that ends otherwise takes its line along.
        self._progress: dict[str, str] = {}
        self._paused: set[str] = set()
        self._changed: dict[str, asyncio.Event] = {}
        #: How many followers wait on each run's event now (a run nobody follows keeps no event).
        self._watchers: dict[str, int] = {}

    def progress(self, run_id: str) -> str | None:
        """Return the latest progress line of a run this process drives, or left awaiting review."""
        return self._progress.get(run_id)

    def start(self, record: RunRecord) -> None:
        """Start a prepared run in the background."""
        self._spawn(record, lambda on_event: self.runner.start(record, on_event=on_event))

    def review(self, record: RunRecord, decision: Any, pending_round: int | None = None) -> None:
        """Resume a run paused for review with the person's decision (``pending_round``: the round it answers)."""
        if self.is_live(record.run_id):
            raise BadInputError(f"run {record.run_id} is running, not awaiting review")
        self._spawn(record, lambda on_event: self.runner.resume(
            record.run_id, on_event=on_event, review=decision, pending_round=pending_round))

    def _spawn(self, record: RunRecord, work: Any) -> None:
        run_id, max_rounds = record.run_id, record.settings.max_rounds
        self._paused.discard(run_id)  # resumed: paused again only if it asks for review again

        def on_event(event: dict[str, Any]) -> None:
            if event.get("event") == "awaiting_review":
                self._paused.add(run_id)
            line = describe_event(event, max_rounds)
            if line:
                self._progress[run_id] = line
            self.changed(run_id)

        out = Path(record.out_dir) if record.out_dir else self.outputs_root / run_id
        self._launch(run_id, work(on_event), out, name=f"gallery-run-{run_id}")

    def _ended(self, run_id: str) -> None:
        self.changed(run_id)

    def _forget(self, run_id: str) -> None:
        if run_id not in self._paused and not self.is_live(run_id):
            self._progress.pop(run_id, None)  # done, failed or cancelled: the page shows no progress line

    def changed(self, run_id: str) -> None:
        """Wake the pages following a run (an event came, it ended, or it was cancelled or deleted)."""
        event = self._changed.pop(run_id, None)
        if event is not None:
            event.set()

    async def wait_change(self, run_id: str, timeout: float) -> None:
        """Return when the run emits an event or ends, or after ``timeout`` seconds."""
        event = self._changed.setdefault(run_id, asyncio.Event())
        self._watchers[run_id] = self._watchers.get(run_id, 0) + 1
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._watchers[run_id] -= 1
            if not self._watchers[run_id]:  # the last follower left: nothing of the run stays behind
                del self._watchers[run_id]
                if self._changed.get(run_id) is event:
                    del self._changed[run_id]
