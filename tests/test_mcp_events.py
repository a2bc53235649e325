"""The SSE event store: bounded in events, bytes and age; replays one stream of one session only."""

from __future__ import annotations

import pytest
from mcp.server.streamable_http import EventMessage
from mcp.types import JSONRPCNotification

from thinkedit.servers.mcp import http_transport
from thinkedit.servers.mcp.http_transport import BoundedEventStore, SessionTag


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def note(n: int, pad: int = 0) -> JSONRPCNotification:
    return JSONRPCNotification(jsonrpc="2.0", method="notifications/progress", params={"n": n, "pad": "x" * pad})


async def replay(store: BoundedEventStore, after: str, session: str | None = "s1") -> tuple[str | None, list[int]]:
    got: list[int] = []

    async def send(event: EventMessage) -> None:
        got.append(event.message.params["n"])

    token = http_transport._SESSION.set(SessionTag(session))
    try:
        return await store.replay_events_after(after, send), got
    finally:
        http_transport._SESSION.reset(token)


async def store_as(store: BoundedEventStore, session: str, stream: str, message: JSONRPCNotification | None) -> str:
    token = http_transport._SESSION.set(SessionTag(session))
    try:
        return await store.store_event(stream, message)
    finally:
        http_transport._SESSION.reset(token)


async def test_replays_the_rest_of_one_stream_of_one_session() -> None:
    store = BoundedEventStore()
    first = await store_as(store, "s1", "2", None)  # priming event
    await store_as(store, "s1", "2", note(1))
    await store_as(store, "s2", "2", note(99))  # another session, same request id
    await store_as(store, "s1", "3", note(50))  # another stream of the same session
    await store_as(store, "s1", "2", note(2))
    assert await replay(store, first) == ("2", [1, 2])
    assert await replay(store, first, session="s2") == (None, [])
    assert await replay(store, first, session=None) == (None, [])
    assert await replay(store, "no-such-id") == (None, [])


async def test_bounded_by_count_bytes_and_age() -> None:
    clock = Clock()
    store = BoundedEventStore(max_events=3, max_bytes=10_000, max_age=60, clock=clock)
    ids = [await store_as(store, "s1", "2", note(n)) for n in range(5)]
    assert store.count == 3 and await replay(store, ids[0]) == (None, [])  # the oldest went first
    assert await replay(store, ids[2]) == ("2", [3, 4])
    big = await store_as(store, "s1", "2", note(5, pad=6000))
    await store_as(store, "s1", "2", note(6, pad=6000))
    assert store.bytes <= 10_000 and await replay(store, big) == (None, [])
    clock.now = 61
    await store_as(store, "s1", "2", note(7))
    assert store.count == 1


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        BoundedEventStore(max_bytes=0)
