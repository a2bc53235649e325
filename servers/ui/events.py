"""The gallery's live feed of a run (server-sent events), with a cap on the streams one client keeps open.

Each stream re-reads its run whenever it changes (or every poll), so streams cost the whole
gallery time: one client may hold only so many at once, and the next one is told so (429).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import contextmanager
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from thinkedit.agent.runs import RunRecord
from thinkedit.agent.state import ACTIVE
from thinkedit.tools.errors import BadInputError


class StreamSlots:
    """Count the live streams of each client address and refuse the one past the cap."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._open: dict[str, int] = {}

    @contextmanager
    def hold(self, client: str) -> Any:
        """Hold one slot of ``client`` while the stream lasts, or raise 429 when all are taken."""
        if self._open.get(client, 0) >= self.per_client:
            raise HTTPException(
                429, f"too many live streams from this client ({self.per_client} at most): close some run pages"
            )
        self._open[client] = self._open.get(client, 0) + 1
        try:
            yield
        finally:
            self._open[client] -= 1
            if not self._open[client]:
                del self._open[client]


def client_of(request: Request) -> str:
    """Return the address a stream is counted against."""
    return request.client.host if request.client else "unknown"


async def run_stream(
    request: Request,
    slots: StreamSlots,
    load: Callable[[], RunRecord],
    view: Callable[[RunRecord, bool], Awaitable[dict[str, Any]]],
    is_live: Callable[[], bool],
    wait_change: Callable[[], Awaitable[None]],
) -> AsyncIterator[str]:
    """Yield a run's view as SSE events whenever it changes, until it ends or the client leaves.

    The first step takes the client's slot (or raises 429): run it before the response starts
    (``primed``), so a refused stream is an error status, not an empty stream.
    """
    with slots.hold(client_of(request)):
        yield "retry: 2000\n\n"
        last = None
        while True:
            try:
                rec = load()
            except BadInputError as exc:  # the record went away (deleted) or broke: say so and end the stream
                yield f"event: failed\ndata: {json.dumps({'error': str(exc)})}\n\n"
                return
            live = is_live()
            text = json.dumps(await view(rec, live), ensure_ascii=False)
            if text != last:
                yield f"event: run\ndata: {text}\n\n"
                last = text
            # Ended, or interrupted (a server stopped while it ran: its record says how to continue it) and
            # driven by nobody: nothing more will come.
            if not live and (rec.status not in ACTIVE or (rec.status == "running" and rec.error)):
                yield "event: end\ndata: {}\n\n"
                return
            if await request.is_disconnected():
                return
            await wait_change()


async def primed(stream: AsyncIterator[str]) -> AsyncIterator[str]:
    """Run ``stream``'s first step now (its checks raise here) and return the whole stream."""
    first = await anext(stream)

    async def whole() -> AsyncIterator[str]:
        yield first
        async for chunk in stream:
            yield chunk

    return whole()
