"""The runs a long-lived process drives in the background: one asyncio task per run on a shared Runner.

The MCP server (``servers/mcp/jobs.py``) and the gallery (``servers/ui/live_runs.py``) both start and
resume runs as tasks that outlive the request that started them. What they share is here: the
task map (finished tasks leave it), a finished run's files written next to the data, a failure
logged, and on shutdown every live run cancelled and its record put back to ``running`` with a
note saying how to continue it (its finished steps are checkpointed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from pathlib import Path

from thinkedit.agent.runs import Runner, RunRecord
from thinkedit.agent.state import ACTIVE, RunState
from thinkedit.agent.viewer import write_outputs
from thinkedit.tools.errors import BadInputError

log = logging.getLogger(__name__)


class RunTasks:
    """Own the live run tasks of one process; subclasses add how their clients follow the runs."""

    def __init__(self, runner: Runner, outputs_root: Path, interrupted: str) -> None:
        """``interrupted``: the record's error for a run stopped by ``close`` (``{run_id}`` is filled in)."""
        self.runner = runner
        self.outputs_root = outputs_root
        self.interrupted = interrupted
        self._tasks: dict[str, asyncio.Task[RunState | None]] = {}

    @property
    def live_count(self) -> int:
        """Return how many runs this process drives now (finished ones are forgotten)."""
        return len(self._tasks)

    def is_live(self, run_id: str) -> bool:
        """Say whether a task of this process is running ``run_id`` now."""
        task = self._tasks.get(run_id)
        return task is not None and not task.done()

    async def running_elsewhere(self, run_id: str) -> bool:
        """Say whether another process drives ``run_id`` now (it holds the Runner's run lock)."""
        return not self.is_live(run_id) and await self.runner.locks.holder(run_id) is not None

    async def cancel(self, run_id: str) -> bool:
        """Stop a live run and wait until it has stopped; say whether one was live."""
        task = self._tasks.get(run_id)
        if task is None or task.done():
            return False
        log.info("cancelling run %s", run_id)
        task.cancel()
        await asyncio.wait({task})
        return True

    async def cancel_run(self, run_id: str) -> RunRecord:
        """Stop a run at its next safe point and mark it cancelled; finished runs are left as they are.

        A run this process drives is stopped (the Runner records it cancelled); a paused or
        interrupted one is marked cancelled; one that another process drives is refused, naming that.
        """
        self.runner.registry.load(run_id)  # an unknown id is an error before anything is stopped
        if await self.running_elsewhere(run_id):
            raise BadInputError(f"run {run_id} is running in another thinkedit process; cancel it there")
        await self.cancel(run_id)
        # Read after the task has ended: a cancel that lands where the Runner does not record it (before its run
        # starts, while it waits for the run's lock, as it finishes) must still leave the run cancelled.
        record = self.runner.registry.load(run_id)
        if record.status in ACTIVE:
            record.status, record.error = "cancelled", "cancelled"
            self.runner.registry.save(record)
        return record

    def _launch(self, run_id: str, work: Awaitable[RunState | None], out_dir: Path, name: str) -> None:
        """Drive ``work`` (the Runner's start or resume) as the run's task; a finished run's files go to ``out_dir``."""
        task = asyncio.get_running_loop().create_task(self._drive(run_id, work, out_dir), name=name)
        self._tasks[run_id] = task
        task.add_done_callback(lambda done: self._reap(run_id, done, work))

    async def _drive(self, run_id: str, work: Awaitable[RunState | None], out_dir: Path) -> RunState | None:
        try:
            state = await work
            if state is not None and state.status == "done":
                await asyncio.to_thread(write_outputs, state, self.runner.store, out_dir)
            return state
        finally:
            self._ended(run_id)

    def _ended(self, run_id: str) -> None:
        """Called in the run's task as it ends, however it ends (a hook for followers)."""

    def _forget(self, run_id: str) -> None:
        """Called once the run's task is done and has left the map (a hook for per-run state)."""

    def _reap(self, run_id: str, task: asyncio.Task[RunState | None], work: Awaitable[RunState | None]) -> None:
        """Forget the finished task and log a failure (the record already holds it)."""
        if task.cancelled() and hasattr(work, "close"):
            work.close()  # a task cancelled before it ran never started its work: no "never awaited" warning
        if self._tasks.get(run_id) is task:
            del self._tasks[run_id]  # the record and checkpoint keep the run; the map holds live runs only
        self._forget(run_id)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("%s failed: %s: %s", task.get_name(), type(exc).__name__, exc, exc_info=exc)

    async def close(self) -> None:
        """Stop every live run and mark it interrupted, so a later process resumes it (or, paused, asks again)."""
        live = {run_id: t for run_id, t in self._tasks.items() if not t.done()}
        for task in live.values():
            task.cancel()
        if live:
            await asyncio.wait(set(live.values()))
        notes = {}
        for run_id in live:
            record = self.runner.registry.load(run_id)
            if record.status in ("done", "error"):  # it had finished (its files were being written): it stays so
                continue
            if await self.runner.pending_review(run_id) is not None:  # stopped before an answer's step was saved
                record.status, record.error = "awaiting_review", None  # the answer is asked for again
            else:
                record.status, record.error = "running", self.interrupted.format(run_id=run_id)
            self.runner.registry.save(record)  # queued: every record before any wait, none held up by another
            notes[run_id] = record.error or "its review is awaited again"
        for run_id, note in notes.items():
            try:
                await asyncio.to_thread(self.runner.registry.flush, run_id)  # on disk before the process exits
            except Exception as exc:  # the writer has logged it; the other runs' records still count
                log.error("run %s: its interrupted record was not written (%s: %s)", run_id, type(exc).__name__, exc)
                continue
            log.info("run %s interrupted by shutdown: %s", run_id, note)
