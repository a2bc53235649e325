"""Keep recent SSE events of streamable-HTTP sessions so a client that drops its stream can resume it.

The SDK's session manager stores every server-to-client message through an ``EventStore`` and
replays those after a ``Last-Event-ID`` when a client reconnects (protocol 2025-11-25 sessions; a
2026-07-28 request is one exchange, where closing the stream cancels it). Ours is bounded in
events, bytes and age, and keeps sessions apart: the SDK names a stream by the client's JSON-RPC
request id, which two sessions may share, so every event also records the session it belongs to
(learnt by ``SessionScope`` from the request's ``Mcp-Session-Id``, or the response's for the
request that opens the session), and a replay only returns events of the asking session.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.types import JSONRPCMessage
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

SESSION_HEADER = "mcp-session-id"
#: Defaults: plenty for progress notifications and a few results of about 1 MB each.
MAX_EVENTS = 10_000
MAX_BYTES = 64 * 1024 * 1024
MAX_AGE_SECONDS = 600.0


@dataclass
class SessionTag:
    """The MCP session an HTTP request (and what it starts) belongs to, once known."""

    id: str | None = None


_SESSION: ContextVar[SessionTag | None] = ContextVar("thinkedit_mcp_session", default=None)


class SessionScope:
    """Tag each HTTP request with its MCP session, so events stored on its behalf can name it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with its session tag set (the session's own tasks inherit it)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tag = SessionTag(Headers(scope=scope).get(SESSION_HEADER))

        async def tagged_send(message: Message) -> None:
            if tag.id is None and message["type"] == "http.response.start":
                tag.id = Headers(raw=message.get("headers", [])).get(SESSION_HEADER)
            await send(message)

        token = _SESSION.set(tag)
        try:
            await self.app(scope, receive, tagged_send)
        finally:
            _SESSION.reset(token)


@dataclass
class _Event:
    id: EventId
    seq: int
    session: SessionTag | None
    stream_id: StreamId
    message: JSONRPCMessage | None
    size: int
    at: float


class BoundedEventStore(EventStore):
    """Keep the newest events within ``max_events``, ``max_bytes`` and ``max_age`` seconds, oldest out first."""

    def __init__(
        self,
        max_events: int = MAX_EVENTS,
        max_bytes: int = MAX_BYTES,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_events <= 0 or max_bytes <= 0 or max_age <= 0:
            raise ValueError("event store limits must be positive")
        self.max_events, self.max_bytes, self.max_age, self.clock = max_events, max_bytes, max_age, clock
        self._events: OrderedDict[EventId, _Event] = OrderedDict()
        self._seq = 0
        self.bytes = 0

    @property
    def count(self) -> int:
        """Say how many events are kept now (no ``__len__``: the SDK tests the store for truth)."""
        return len(self._events)

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        """Keep one event under a fresh unguessable id, dropping the oldest past the limits."""
        now = self.clock()
        size = len(message.model_dump_json(by_alias=True, exclude_none=True)) if message is not None else 0
        self._seq += 1
        event = _Event(secrets.token_urlsafe(16), self._seq, _SESSION.get(), stream_id, message, size, now)
        self._events[event.id] = event
        self.bytes += size
        self._trim(now)
        return event.id

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        """Send the asking session the events of ``last_event_id``'s stream stored after it."""
        self._trim(self.clock())
        last = self._events.get(last_event_id)
        asking = _SESSION.get()
        if last is None or not _same_session(last.session, asking):
            log.info("no events to replay after %s (unknown, expired or another session's)", last_event_id[:32])
            return None
        seq = last.seq
        while True:  # events stored while we send are sent too, until none are left
            todo = [
                e
                for e in self._events.values()
                if e.seq > seq and e.stream_id == last.stream_id and _same_session(e.session, asking)
            ]
            if not todo:
                return last.stream_id
            for event in todo:
                seq = event.seq
                if event.message is not None:  # priming events carry no message
                    await send_callback(EventMessage(event.message, event.id))

    def _trim(self, now: float) -> None:
        """Drop events past the age, count and size limits (the newest is always kept)."""
        while len(self._events) > 1:
            oldest = next(iter(self._events.values()))
            too_old = now - oldest.at > self.max_age
            if not (too_old or len(self._events) > self.max_events or self.bytes > self.max_bytes):
                break
            self._events.popitem(last=False)
            self.bytes -= oldest.size


def _same_session(stored: SessionTag | None, asking: SessionTag | None) -> bool:
    """Say whether an event belongs to the asking request's session (unknown sessions never match)."""
    return stored is not None and asking is not None and stored.id is not None and stored.id == asking.id
