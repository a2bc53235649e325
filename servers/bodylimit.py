"""Request body limits for every server of ours: counted as the bytes arrive, refused with one clear 413."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from thinkedit.servers.httputil import ASGIApp, Message, Receive, Scope, Send, error_body, send_json


#: After a 413, the body is still read and dropped up to this much more (at most the limit again) before
#: the connection closes: most clients write the whole body before they read, and a client whose write
#: fails on a closed connection may lose the answer (async httpx does).
DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 10.0


class BodyTooLarge(Exception):
    """Signal that a request body passed the server's limit while it was being read."""


def size_text(n: int) -> str:
    """Write a byte count for people: whole MiB as such, else MiB with the exact bytes."""
    mib = 1024 * 1024
    if n % mib == 0:
        return f"{n // mib} MiB"
    return f"{n / mib:.2f} MiB ({n} bytes)" if n >= mib else f"{n} bytes"


class BodyLimit:
    """Answer 413 once a request body passes ``limit`` bytes, whether declared or counted as it arrives.

    The app reads the body through a counting ``receive``: the chunk that crosses the limit raises
    ``BodyTooLarge`` and never reaches it. Whatever the app answers after that (its own 413, a parser's
    400, an exception) is replaced by one 413 naming the limit, sent with ``Connection: close``; a little
    more of the body is read and dropped, then the connection closes, so the rest is never read.
    ``render`` shapes the JSON body. ``on_unseen`` is told the path of each request refused on its declared
    length alone: the app never sees those (it sees, and may count, a body cut off as it arrives).
    """

    def __init__(self, app: ASGIApp, limit: int, setting: str = "",
                 render: Callable[[str], dict[str, Any]] | None = None,
                 on_unseen: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.on_unseen = on_unseen
        self.message = f"request body is larger than this server's limit of {size_text(limit)}" + (
            f" ({setting})" if setting else "")
        self._render = render or (lambda m: error_body(m, "invalid_request_error", code="request_too_large"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            if self.on_unseen is not None:
                self.on_unseen(scope.get("path", ""))
            await self._refuse(receive, send)
            return
        seen, over, started, refused = 0, False, False, False

        async def counted_receive() -> Message:
            nonlocal seen, over
            if over:  # the connection closes after the 413: nothing more comes
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    raise BodyTooLarge(self.message)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started, refused
            if refused:
                return  # the rest of the app's own answer
            if message["type"] == "http.response.start":
                if over and not started:
                    refused = True
                    await self._refuse(receive, send)
                    return
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not over or started:
                raise
        if over and not started and not refused:
            await self._refuse(receive, send)

    async def _refuse(self, receive: Receive, send: Send) -> None:
        """Send the 413, drop a bounded stretch of what follows, then end the response (uvicorn closes)."""
        await send_json(send, 413, self._render(self.message), [(b"connection", b"close")], more_body=True)
        with contextlib.suppress(Exception):  # a stall, a timeout, a hang-up: stop dropping and close
            await asyncio.wait_for(self._drop(receive, min(self.limit, DRAIN_BYTES)), DRAIN_SECONDS)
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _drop(receive: Receive, budget: int) -> None:
        """Read and discard up to ``budget`` bytes of body, stopping at its end or a disconnect."""
        while budget > 0:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            budget -= len(message.get("body", b""))
