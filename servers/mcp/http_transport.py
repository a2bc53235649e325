"""Serve MCP over streamable HTTP: loopback by default, a bearer token for anything else, a body limit.

Recent SSE events are kept so a client that drops its stream can resume it. The SDK's session
manager stores every server-to-client message through an ``EventStore`` and replays those after a
``Last-Event-ID`` when a client reconnects (protocol 2025-11-25 sessions; a 2026-07-28 request is
one exchange, where closing the stream cancels it). Ours is bounded in events, bytes and age, and
keeps sessions apart: the SDK names a stream by the client's JSON-RPC request id, which two
sessions may share, so every event also records the session it belongs to (learnt by
``SessionScope`` from the request's ``Mcp-Session-Id``, or the response's for the request that
opens the session), and a replay only returns events of the asking session.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import JSONRPCMessage
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from thinkedit.servers.bodylimit import BodyLimit
from thinkedit.servers.exposure import is_loopback
from thinkedit.servers.httputil import HostOriginGuard

log = logging.getLogger(__name__)

#: Paths answered without a token (they reveal nothing but liveness).
PUBLIC_PATHS = frozenset({"/health"})
#: How long a client waits before reconnecting a dropped SSE stream (the ``retry`` field), in ms.
RETRY_MS = 1000


class BearerTokenMiddleware:
    """Answer 401 to every request that lacks ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the token before the request reaches MCP (lifespan events pass through)."""
        if scope["type"] != "http" or scope.get("path") in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        scheme, _, given = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token):
            response = JSONResponse(
                {"error": "unauthorized", "error_description": "missing or wrong bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="thinkedit"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _jsonrpc_error(message: str) -> dict[str, object]:
    """Shape a refusal as JSON-RPC, as the SDK answers a bad request."""
    return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}


def http_app(
    server: MCPServer, *, host: str, token: str | None, max_body_bytes: int, events: BoundedEventStore | None = None
) -> ASGIApp:
    """Return the streamable-HTTP ASGI app at ``/mcp``, guarded by the token when one is given.

    SSE events carry ids from ``events`` (a fresh bounded store by default), so a client that
    reconnects with ``Last-Event-ID`` gets what it missed.
    """
    if token is None and not is_loopback(host):
        raise ValueError(f"binding {host} needs a bearer token (--token or THINKEDIT_MCP_TOKEN)")

    @server.custom_route("/health", methods=["GET"])
    async def health(_request: object) -> JSONResponse:
        """Answer readiness probes without a token."""
        return JSONResponse({"status": "ok"})

    app: ASGIApp = SessionScope(
        server.streamable_http_app(
            host=host,
            max_request_body_size=max_body_bytes,
            event_store=events if events is not None else BoundedEventStore(),
            retry_interval=RETRY_MS,
            # Host and Origin are checked below, as on the editor and thinker servers: the SDK's own check
            # covers three spellings of loopback only, so --host 127.0.0.2 or LocalHost would go unguarded.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
    )
    # The SDK's own limit answers 413 but keeps the connection, so the rest is still read; this one closes it.
    app = BodyLimit(app, max_body_bytes, setting="set by --max-image-mb", render=_jsonrpc_error)
    app = HostOriginGuard(app, loopback=is_loopback(host), render=_jsonrpc_error)
    return BearerTokenMiddleware(app, token) if token else app


async def serve_http(server: MCPServer, *, host: str, port: int, token: str | None, max_body_bytes: int) -> None:
    """Run the HTTP app under uvicorn until interrupted (the lifespan then stops live runs)."""
    import uvicorn

    app = http_app(server, host=host, token=token, max_body_bytes=max_body_bytes)
    from thinkedit.servers.timeouts import HEADER_TIMEOUT_S, guarded_protocol

    # Headers get a deadline, as on the editor server; bodies are small and capped (max_body_bytes).
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                            http=guarded_protocol(HEADER_TIMEOUT_S), timeout_keep_alive=5)
    await uvicorn.Server(config).serve()


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
