"""The micro-batcher alone: batching, bounds, cancellation, draining (no model, no HTTP)."""

from __future__ import annotations

import asyncio

import pytest

from thinkedit.servers.editor.batching import MicroBatcher, QueueFullError, ShuttingDownError


class Recorder:
    """A batch function that records each call and answers ``request * 10`` after ``delay`` s."""

    def __init__(self, delay: float = 0.0, fail_on: int | None = None) -> None:
        self.calls: list[list[int]] = []
        self.delay = delay
        self.fail_on = fail_on

    async def __call__(self, requests: list[int]) -> list[int]:
        self.calls.append(list(requests))
        await asyncio.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in requests:
            raise ValueError(f"request {self.fail_on} is bad")
        return [r * 10 for r in requests]


def batcher(run: Recorder, **kwargs: float) -> MicroBatcher[int, int]:
    options = {"max_queue": 16, "max_batch": 4, "window_s": 0.02, **kwargs}
    b: MicroBatcher[int, int] = MicroBatcher(run, **options)  # type: ignore[arg-type]
    b.start()
    return b


async def test_compatible_requests_share_a_call_up_to_max_batch() -> None:
    run = Recorder()
    b = batcher(run)
    results = await asyncio.gather(*(b.submit(i, key="same") for i in range(6)))
    assert results == [i * 10 for i in range(6)]
    assert sorted(len(c) for c in run.calls) == [2, 4]
    await b.close(1)


async def test_incompatible_requests_run_apart() -> None:
    run = Recorder()
    b = batcher(run)
    results = await asyncio.gather(*(b.submit(i, key=i % 2) for i in range(4)))
    assert results == [0, 10, 20, 30]
    assert all(len({r % 2 for r in call}) == 1 for call in run.calls)
    await b.close(1)


async def test_max_batch_one_turns_batching_off() -> None:
    run = Recorder()
    b = batcher(run, max_batch=1)
    await asyncio.gather(*(b.submit(i, key="same") for i in range(3)))
    assert [len(c) for c in run.calls] == [1, 1, 1]
    await b.close(1)


async def test_full_queue_refuses_with_a_retry_estimate() -> None:
    run = Recorder(delay=0.3)
    b = batcher(run, max_queue=1, max_batch=1)
    first = asyncio.ensure_future(b.submit(1, key="k"))
    await asyncio.sleep(0.05)  # 1 is running, the queue is empty
    second = asyncio.ensure_future(b.submit(2, key="k"))
    await asyncio.sleep(0.01)
    with pytest.raises(QueueFullError) as refused:
        await b.submit(3, key="k")
    assert refused.value.retry_after >= 1
    assert await first == 10 and await second == 20
    await b.close(1)


async def test_cancelled_caller_leaves_the_queue_and_never_runs() -> None:
    run = Recorder(delay=0.2)
    b = batcher(run, max_batch=1)
    running = asyncio.ensure_future(b.submit(1, key="k"))
    await asyncio.sleep(0.05)
    queued = asyncio.ensure_future(b.submit(2, key="k"))
    await asyncio.sleep(0.01)
    assert b.depth == 1
    queued.cancel()
    await asyncio.sleep(0.01)
    assert b.depth == 0
    assert await running == 10
    await b.close(1)
    assert run.calls == [[1]]


async def test_one_bad_request_fails_alone() -> None:
    run = Recorder(fail_on=2)
    b = batcher(run)
    results = await asyncio.gather(*(b.submit(i, key="k") for i in range(4)), return_exceptions=True)
    assert [r for i, r in enumerate(results) if i != 2] == [0, 10, 30]
    assert isinstance(results[2], ValueError)
    await b.close(1)


async def test_close_finishes_queued_work_then_refuses() -> None:
    run = Recorder(delay=0.05)
    b = batcher(run, max_batch=1)
    pending = [asyncio.ensure_future(b.submit(i, key="k")) for i in range(3)]
    await asyncio.sleep(0.01)
    await b.close(5)
    assert [p.result() for p in pending] == [0, 10, 20]
    with pytest.raises(ShuttingDownError):
        await b.submit(9, key="k")
