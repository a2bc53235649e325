"""A bounded request queue and a micro-batcher feeding one pipeline (one worker, one batch at a time)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from thinkedit.servers.editor.metrics import EditorMetrics

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Res = TypeVar("Res")


class QueueFullError(Exception):
    """Refuse a request because the queue is at its bound; the caller should retry later."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the editor queue is full; retry in about {retry_after} s")
        self.retry_after = retry_after


class ShuttingDownError(Exception):
    """Refuse or abandon a request because the server is shutting down."""


@dataclass(eq=False)
class _Job(Generic[Req, Res]):
    """Hold one queued request, its batching key and the future its caller awaits."""

    request: Req
    key: Hashable
    future: asyncio.Future[Res]
    cost: float = 1.0
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher(Generic[Req, Res]):
    """Queue requests and run compatible ones (equal ``key``) together, up to ``max_batch`` per call.

    The first request of a batch waits at most ``window_s`` for companions, and only while the
    server is busy with several clients (the last batch had companions, or others are queued): a
    lone client's request starts at once. Requests that pile up while the pipeline is busy join
    the next batch without waiting. A request whose caller
    is cancelled (its client hung up) leaves the queue at once; one already in the pipeline
    finishes and its result is dropped. ``close`` finishes queued work before returning.
    """

    def __init__(
        self,
        run_batch: Callable[[list[Req]], Awaitable[list[Res]]],
        *,
        max_queue: int,
        max_batch: int,
        window_s: float,
        metrics: EditorMetrics | None = None,
    ) -> None:
        self._run_batch = run_batch
        self.max_queue = max_queue
        self.max_batch = max_batch
        self.window_s = window_s
        self.metrics = metrics
        self._pending: deque[_Job[Req, Res]] = deque()
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        self._batch_seconds = 1.0  # running estimate, for Retry-After
        self._last_batch = 0  # size of the last batch run: more than one means companions are likely

    @property
    def depth(self) -> int:
        """Return how many requests wait for the pipeline."""
        return len(self._pending)

    def start(self) -> None:
        """Start the worker task (call from the event loop that will submit)."""
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="editor-batcher")

    def retry_after(self) -> int:
        """Estimate the seconds until the queue has room again (at least 1)."""
        batches_ahead = math.ceil(self.depth / self.max_batch) + 1
        return max(1, min(300, math.ceil(batches_ahead * self._batch_seconds)))

    @property
    def queued_work(self) -> float:
        """Return the weight of the waiting requests (1 per image at the model's working area)."""
        return sum(job.cost for job in self._pending)

    async def submit(self, request: Req, key: Hashable, cost: float = 1.0) -> Res:
        """Queue ``request`` and return its result; raise ``QueueFullError`` when the queue is full.

        The queue holds ``max_queue`` requests and ``max_queue`` units of work (``cost``): a heavy
        request waits for room like several light ones, though one always fits an empty queue.
        """
        if self._closing:
            raise ShuttingDownError("the server is shutting down")
        if len(self._pending) >= self.max_queue or (self._pending and self.queued_work + cost > self.max_queue):
            raise QueueFullError(self.retry_after())
        job: _Job[Req, Res] = _Job(request, key, asyncio.get_running_loop().create_future(), cost)
        self._pending.append(job)
        self._gauge()
        self._arrived.set()
        try:
            return await job.future
        except asyncio.CancelledError:
            if job in self._pending:
                self._pending.remove(job)
                self._gauge()
                log.info("dropped a queued request whose caller went away")
            if self.metrics is not None:
                self.metrics.error("cancelled")
            raise

    async def close(self, timeout: float) -> bool:
        """Stop taking requests, finish the queued ones within ``timeout`` s, then stop; say whether all finished.

        Past the timeout, the queued requests and the batch running fail with ``ShuttingDownError``.
        """
        self._closing = True
        self._arrived.set()
        if self._worker is None:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._worker), timeout)
            return True
        except TimeoutError:
            log.warning("shutdown: %d queued request(s) not finished after %.0f s", self.depth, timeout)
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker  # the running batch's callers are answered as it ends
            return False
        except asyncio.CancelledError:
            self._worker.cancel()
            raise
        finally:
            while self._pending:
                job = self._pending.popleft()
                if not job.future.done():
                    job.future.set_exception(ShuttingDownError("the server shut down before this edit ran"))
            self._gauge()

    # -- the worker --------------------------------------------------------------------------

    async def _work(self) -> None:
        """Take batches off the queue until closed and drained."""
        while True:
            while not self._pending:
                if self._closing:
                    return
                self._arrived.clear()
                await self._arrived.wait()
            batch = await self._collect()
            if batch:
                await self._execute(batch)

    def _take_compatible(self, batch: list[_Job[Req, Res]], key: Hashable) -> None:
        """Move queued live requests with ``key`` into ``batch``, oldest first, up to max_batch."""
        for job in list(self._pending):
            if len(batch) >= self.max_batch:
                break
            if job.key == key:
                self._pending.remove(job)
                if not job.future.done():
                    batch.append(job)

    async def _collect(self) -> list[_Job[Req, Res]]:
        """Take the oldest live request and the compatible ones that arrive within the window."""
        first = self._pending.popleft()
        if first.future.done():
            self._gauge()
            return []
        batch = [first]
        self._take_compatible(batch, first.key)
        busy = self._last_batch > 1 or len(batch) > 1
        deadline = time.perf_counter() + (self.window_s if busy else 0.0)
        while len(batch) < self.max_batch:
            self._take_compatible(batch, first.key)
            remaining = deadline - time.perf_counter()
            if len(batch) >= self.max_batch or remaining <= 0 or self._closing:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                self._take_compatible(batch, first.key)
                break
        self._gauge()
        return [job for job in batch if not job.future.done()]

    async def _execute(self, batch: list[_Job[Req, Res]]) -> None:
        """Run one batch and record its size and time."""
        started = time.perf_counter()
        self._last_batch = len(batch)
        if self.metrics is not None:
            self.metrics.batch_size.observe(len(batch))
            self.metrics.running.set(len(batch))
            for job in batch:
                self.metrics.queue_wait.observe(started - job.enqueued)
        try:
            await self._settle(batch)
        finally:
            elapsed = time.perf_counter() - started
            self._batch_seconds = 0.7 * self._batch_seconds + 0.3 * elapsed
            if self.metrics is not None:
                self.metrics.running.set(0)
                self.metrics.batch_seconds.observe(elapsed)
            log.debug("batch of %d done in %.3f s", len(batch), elapsed)

    async def _settle(self, batch: list[_Job[Req, Res]]) -> None:
        """Run the batch; if it fails, run its requests one by one so one bad request fails alone."""
        try:
            results = await self._run_batch([job.request for job in batch])
        except asyncio.CancelledError:  # shut down while it ran: its callers are not left waiting
            for job in batch:
                _resolve(job, exc=ShuttingDownError("the server shut down while this edit ran"))
            raise
        except Exception as exc:
            if len(batch) == 1:
                _resolve(batch[0], exc=exc)
                return
            log.warning("a batch of %d failed (%s); running its requests one by one", len(batch), exc)
            for job in batch:
                if job.future.done():
                    continue
                try:
                    (result,) = await self._run_batch([job.request])
                except Exception as single_exc:
                    _resolve(job, exc=single_exc)
                else:
                    _resolve(job, result=result)
            return
        for job, result in zip(batch, results, strict=True):
            _resolve(job, result=result)

    def _gauge(self) -> None:
        """Publish the queue depth."""
        if self.metrics is not None:
            self.metrics.queue_depth.set(len(self._pending))


def _resolve(job: _Job[Req, Res], *, result: Res | None = None, exc: BaseException | None = None) -> None:
    """Hand a result or error to a job's caller, unless the caller has gone."""
    if job.future.done():
        return
    if exc is not None:
        job.future.set_exception(exc)
    else:
        job.future.set_result(result)  # type: ignore[arg-type]
