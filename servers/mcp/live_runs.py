"""Background runs: each run is an asyncio task in the server, checkpointed by the Runner.

A tool call starts a run and follows its events for at most its wait budget, sending one MCP
progress notification per phase of a round (``ProgressReporter``); the run goes on after the
call returns, and ``get_run`` follows it again. Cancelling stops the task at its next
await (the checkpoint of every finished step stays) and the Runner marks the record cancelled.
When the server stops, live runs are put back to ``running`` so ``get_run`` resumes them later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from thinkedit.agent.progress import describe_event
from thinkedit.agent.runs import Runner, RunRecord
from thinkedit.agent.state import RunState
from thinkedit.agent.tasks import RunTasks
from thinkedit.tools.errors import BadInputError

log = logging.getLogger(__name__)

EventSink = Callable[[dict[str, Any]], Awaitable[None]]
ReportFn = Callable[[float, float | None, str | None], Awaitable[None]]

#: Written into a record whose run the server stopped, so the next server knows to resume it.
INTERRUPTED = "interrupted: the server stopped while the run was going; get_run resumes it"
#: Phases of a round, in order; progress counts phases done.
PHASES = {"round_started": 0, "image_ready": 1, "verdict": 2}


class RunJobs(RunTasks):
    """Own the live run tasks of one server and fan their progress events out to followers."""

    def __init__(self, runner: Runner, outputs_root: Path) -> None:
        super().__init__(runner, outputs_root, INTERRUPTED)
        self._followers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._stopping: set[asyncio.Task[None]] = set()  # cancels of paused runs under way (``cancel_soon``)

    def outputs_dir(self, run_id: str) -> Path:
        """Return where a finished run's files are written."""
        return self.outputs_root / run_id

    def awaits_review(self, run_id: str, record: RunRecord | None = None) -> bool:
        """Say whether the run is paused for a review answer (and no task of this server drives it).

        ``record``: the run's record when the caller has just read it (else it is read here).
        """
        record = record if record is not None else self.runner.registry.load(run_id)
        return record.status == "awaiting_review" and not self.is_live(run_id)

    async def start(self, record: RunRecord) -> None:
        """Start a prepared run in the background."""
        await self._spawn(record.run_id, lambda: self.runner.start(record, on_event=self._fan_out(record.run_id)))

    async def resume(self, run_id: str, review: Any = None, pending_round: int | None = None) -> None:
        """Continue an interrupted (or, with ``review``, a paused) run from its last checkpoint.

        ``pending_round``: the round ``review`` answers (see ``Runner.resume``).
        """
        log.info("resuming run %s", run_id)
        await self._spawn(run_id, lambda: self.runner.resume(
            run_id, on_event=self._fan_out(run_id), review=review, pending_round=pending_round))

    async def _spawn(self, run_id: str, work: Callable[[], Awaitable[RunState | None]]) -> None:
        """Run ``work`` as this run's task (the Runner takes the run's lock for as long as it drives)."""
        if self.is_live(run_id):
            raise BadInputError(f"run {run_id} is already running in this server")
        if (holder := await self.runner.locks.holder(run_id)) is not None:
            raise BadInputError(f"run {run_id} is already being driven by {holder}")
        self._launch(run_id, work(), self.outputs_dir(run_id), name=f"run-{run_id}")

    def _forget(self, run_id: str) -> None:
        if not self._followers.get(run_id, True):
            self._followers.pop(run_id, None)

    def _fan_out(self, run_id: str) -> Callable[[dict[str, Any]], None]:
        """Return the Runner's event callback: copy each event to every follower of the run."""

        def deliver(event: dict[str, Any]) -> None:
            for queue in self._followers.get(run_id, ()):
                queue.put_nowait(event)

        return deliver

    async def follow(self, run_id: str, timeout: float, sink: EventSink | None = None) -> bool:
        """Pass the run's events to ``sink`` until it ends or ``timeout`` passes; say whether it ended."""
        task = self._tasks.get(run_id)
        if task is None:
            return await self._poll_elsewhere(run_id, timeout)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._followers.setdefault(run_id, set()).add(queue)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while not task.done():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                getter = asyncio.ensure_future(queue.get())
                try:
                    await asyncio.wait({getter, task}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if not getter.done():
                        getter.cancel()
                if getter.done() and not getter.cancelled() and sink is not None:
                    await sink(getter.result())
            while sink is not None and not queue.empty():
                await sink(queue.get_nowait())
            return task.done()
        finally:
            followers = self._followers.get(run_id)
            if followers is not None:
                followers.discard(queue)
                if not followers:
                    del self._followers[run_id]

    async def _poll_elsewhere(self, run_id: str, timeout: float, every: float = 0.5) -> bool:
        """Wait for a run another process drives by watching its lock (its events do not reach us)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self.runner.locks.holder(run_id) is not None:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(min(every, max(0.0, deadline - loop.time())))
        return True

    def cancel_soon(self, run_id: str) -> None:
        """Stop the run, for callers that cannot await (being cancelled): its task, or a paused run's record.

        A run paused for review (its form open in the call being cancelled) has no task: it is marked
        cancelled in the background, as ``cancel_run`` does, rather than left waiting for nobody.
        """
        task = self._tasks.get(run_id)
        if task is not None and not task.done():
            log.info("cancelling run %s", run_id)
            task.cancel()
            return
        stopping = asyncio.get_running_loop().create_task(self._cancel_idle(run_id), name=f"cancel-{run_id}")
        self._stopping.add(stopping)
        stopping.add_done_callback(self._stopping.discard)

    async def _cancel_idle(self, run_id: str) -> None:
        try:
            await self.cancel_run(run_id)  # a finished run stays as it is
        except Exception as exc:  # another process drives it now, or its record is gone
            log.warning("run %s was not cancelled: %s", run_id, exc)


def progress_of(event: dict[str, Any], max_rounds: int) -> tuple[float, float, str] | None:
    """Return (progress, total, message) for one event, or None for events not reported.

    Progress counts phases: three per round (editing, edited, scored), and the finish, out of three
    per allowed round and one; the finishing event sets progress to the total, as the run may stop
    early, and so it is more than the last round's "scored" even when every round ran.
    """
    total = float(3 * max_rounds + 1)
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
    """Send one progress notification per reported event that moves the count on.

    MCP asks that progress increase with each notification, so an event that does not (a phase
    retried after a failure, or one arriving late) sends nothing.
    """

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
        if progress <= self.last:
            return
        self.last = progress
        self.sent += 1
        await self.report(progress, total, message)
