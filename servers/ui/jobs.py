"""Runs the gallery drives: asyncio tasks on the shared Runner, their latest progress line, change signals.

A run started or reviewed from the page runs in the gallery's process; its stream events wake the
pages that follow it (server-sent events). Runs driven by other processes (the CLI, the MCP
server) are followed by re-reading their checkpoints.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from thinkedit.agent.progress import describe_event
from thinkedit.agent.runs import Runner, RunRecord
from thinkedit.agent.state import RunState
from thinkedit.agent.trajectory import write_outputs
from thinkedit.tools.errors import BadInputError

log = logging.getLogger(__name__)

#: Written into the record of a run the gallery stopped on its way out.
INTERRUPTED = "interrupted: the gallery stopped while the run was going; continue it with thinkedit resume {run_id}"


class GalleryJobs:
    """Own the gallery's live run tasks and tell followers when a run changed."""

    def __init__(self, runner: Runner, outputs_root: Path) -> None:
        self.runner = runner
        self.outputs_root = outputs_root
        self._tasks: dict[str, asyncio.Task[RunState | None]] = {}
        self._progress: dict[str, str] = {}
        self._changed: dict[str, asyncio.Event] = {}

    def is_live(self, run_id: str) -> bool:
        """Say whether this process runs ``run_id`` now."""
        task = self._tasks.get(run_id)
        return task is not None and not task.done()

    def progress(self, run_id: str) -> str | None:
        """Return the latest progress line of a run this process drives."""
        return self._progress.get(run_id)

    def start(self, record: RunRecord) -> None:
        """Start a prepared run in the background."""
        self._spawn(record, lambda on_event: self.runner.start(record, on_event=on_event))

    def review(self, record: RunRecord, decision: Any) -> None:
        """Resume a run paused for review with the person's decision."""
        if self.is_live(record.run_id):
            raise BadInputError(f"run {record.run_id} is running, not awaiting review")
        self._spawn(record, lambda on_event: self.runner.resume(record.run_id, on_event=on_event, review=decision))

    def _spawn(self, record: RunRecord, work: Any) -> None:
        run_id, max_rounds = record.run_id, record.settings.max_rounds

        def on_event(event: dict[str, Any]) -> None:
            line = describe_event(event, max_rounds)
            if line:
                self._progress[run_id] = line
            self._signal(run_id)

        async def drive() -> RunState | None:
            try:
                state = await work(on_event)
                if state is not None and state.status == "done":
                    out = Path(record.out_dir) if record.out_dir else self.outputs_root / run_id
                    await asyncio.to_thread(write_outputs, state, self.runner.store, out)
                return state
            finally:
                self._signal(run_id)

        task = asyncio.get_running_loop().create_task(drive(), name=f"gallery-run-{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[RunState | None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("%s failed: %s: %s", task.get_name(), type(exc).__name__, exc)

    def _signal(self, run_id: str) -> None:
        event = self._changed.pop(run_id, None)
        if event is not None:
            event.set()

    async def wait_change(self, run_id: str, timeout: float) -> None:
        """Return when the run emits an event or ends, or after ``timeout`` seconds."""
        event = self._changed.setdefault(run_id, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    async def close(self) -> None:
        """Stop live runs and mark them interrupted: ``thinkedit resume`` (or ``get_run`` over MCP) continues them."""
        live = {run_id: t for run_id, t in self._tasks.items() if not t.done()}
        for task in live.values():
            task.cancel()
        if live:
            await asyncio.wait(set(live.values()))
        for run_id in live:
            record = self.runner.registry.load(run_id)
            record.status, record.error = "running", INTERRUPTED.format(run_id=run_id)
            self.runner.registry.save(record)
