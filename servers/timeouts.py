"""Read timeouts for our uvicorn servers: slow or unfinished headers and bodies are not held open forever.

uvicorn waits for a request's headers as long as the client likes, and an ASGI app reads the body
at the client's pace. ``GuardedHttpToolsProtocol`` (uvicorn's C ``httptools`` parser, when it is
installed) and ``GuardedH11Protocol`` (the pure-Python h11 one, otherwise) close a connection whose
headers have not arrived within ``header_timeout`` seconds; ``BodyTimeout`` fails a body read that
stalls longer than ``idle_timeout`` between chunks or takes longer than ``total_timeout`` in all.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADER_TIMEOUT_S = 10.0
BODY_IDLE_TIMEOUT_S = 30.0
BODY_TOTAL_TIMEOUT_S = 300.0


class BodyReadTimeout(Exception):
    """Signal that a client sent its request body too slowly (answered 408)."""


class HeaderDeadline:
    """A deadline for each request's headers, for a uvicorn protocol class (mixed in before it).

    The protocol arms it when a connection opens and after each response, disarms it when its
    parser has the headers, and says through ``_awaiting_headers`` whether headers are still due.
    """

    header_timeout: float = HEADER_TIMEOUT_S
    on_slow: Callable[[], None] | None = None
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm()

    def _awaiting_headers(self) -> bool:
        raise NotImplementedError

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._awaiting_headers():
            return
        if self.on_slow is not None:
            self.on_slow()
        log.info("closed a connection whose request headers took over %.0f s", self.header_timeout)
        self.transport.close()


class GuardedH11Protocol(HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers."""

    def _awaiting_headers(self) -> bool:
        return self.conn.their_state is h11.IDLE

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._awaiting_headers():
            self._disarm()  # the headers are in; the body has its own timeout

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._awaiting_headers():
            self._arm()  # the next request's headers get the same deadline


def _httptools_protocol() -> type | None:
    """Return uvicorn's httptools protocol with the header deadline, or None when httptools is not installed."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return None

    class GuardedHttpToolsProtocol(HeaderDeadline, HttpToolsProtocol):  # type: ignore[misc, valid-type]
        """uvicorn's httptools protocol with a deadline for each request's headers."""

        _headers_due = True

        def _awaiting_headers(self) -> bool:
            return self._headers_due

        def on_headers_complete(self) -> None:
            self._headers_due = False
            self._disarm()  # the headers are in; the body has its own timeout
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._headers_due = True
                self._arm()  # the next request's headers get the same deadline

    return GuardedHttpToolsProtocol


def guarded_protocol(header_timeout: float, on_slow: Callable[[], None] | None = None,
                     parser: str = "auto") -> type:
    """Return the protocol class to give uvicorn's ``http=``: this header deadline, this callback on a close.

    ``parser`` "auto" takes uvicorn's C httptools parser when it is installed (as uvicorn's own
    default does; it parses a request several times faster than h11), else h11; "h11" forces h11.
    """
    hook = staticmethod(on_slow) if on_slow is not None else None
    base = _httptools_protocol() if parser == "auto" else None
    if base is None:
        base = GuardedH11Protocol
    return type(base.__name__, (base,), {"header_timeout": header_timeout, "on_slow": hook})


class BodyTimeout:
    """Fail a request whose body stalls (``idle_timeout`` between chunks) or drags (``total_timeout``)."""

    def __init__(self, app: ASGIApp, idle_timeout: float = BODY_IDLE_TIMEOUT_S,
                 total_timeout: float = BODY_TOTAL_TIMEOUT_S,
                 render: Callable[[str], dict[str, Any]] | None = None) -> None:
        """``render`` shapes the 408's JSON body from its message (default: the OpenAI error shape)."""
        self.app = app
        self.idle_timeout = idle_timeout
        self.total_timeout = total_timeout
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.total_timeout
        body_done = False
        timed_out: BodyReadTimeout | None = None

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done:
                return await receive()  # after the body: the disconnect watch waits as long as it likes
            wait = min(self.idle_timeout, deadline - loop.time())
            try:
                message = await asyncio.wait_for(receive(), max(0.0, wait))
            except TimeoutError:
                timed_out = BodyReadTimeout(
                    f"the request body came too slowly (no data for {self.idle_timeout:g} s or "
                    f"over {self.total_timeout:g} s in all)"
                )
                raise timed_out from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        started = replaced = False

        async def tracked_send(message: Message) -> None:
            nonlocal started, replaced
            if timed_out is not None and not started:
                # The app caught the timeout (FastAPI reads a JSON body inside a catch-all: a 400): ours instead.
                if message["type"] == "http.response.start":
                    started = replaced = True
                    await _answer_408(send, timed_out, self.render)
                return
            if replaced:
                return  # the rest of the app's answer, after ours
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, tracked_send)
        except BodyReadTimeout as exc:  # an app that did not answer it itself: 408, no traceback
            if replaced:
                return
            if started:
                raise
            await _answer_408(send, exc, self.render)


async def _answer_408(
    send: Send, exc: BodyReadTimeout, render: Callable[[str], dict[str, Any]] | None = None
) -> None:
    """Answer a body that came too slowly: 408, naming why, and close the connection."""
    body = render(str(exc)) if render is not None else {"error": {
        "message": str(exc), "type": "invalid_request_error", "param": None, "code": "request_timeout"}}
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 408, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})
