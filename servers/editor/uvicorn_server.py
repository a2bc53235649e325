"""uvicorn's server for the editor app: shutdown drains the editor first, so ``--shutdown-timeout`` bounds it."""

from __future__ import annotations

import asyncio
import socket
import time

import uvicorn

from thinkedit.servers.editor.service import EditorService

#: Seconds uvicorn gives the requests left after the drain, at least, to write their replies.
FLUSH_GRACE_S = 2.0


class EditorServer(uvicorn.Server):
    """uvicorn's server, draining the editor as soon as shutdown begins rather than after uvicorn's grace period.

    While it drains, ``/health`` says ``draining`` (503) and new edits get 503; past the timeout the queued
    edits fail with 503 and a running batch ends with its worker process. Then uvicorn closes the
    connections, giving the requests left what remains of the timeout (at least ``FLUSH_GRACE_S``).
    """

    def __init__(self, config: uvicorn.Config, service: EditorService, timeout_s: float) -> None:
        super().__init__(config)
        self.service, self.timeout_s = service, timeout_s

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Drain the editor (a second Ctrl-C ends it at once), then shut uvicorn down."""
        started = time.monotonic()
        closing = asyncio.ensure_future(self.service.close(self.timeout_s))
        while not closing.done() and not self.force_exit:
            await asyncio.wait({closing}, timeout=0.1)
        if not closing.done():
            closing.cancel()
            if self.service.worker is not None:
                self.service.worker.kill()
        left = self.timeout_s - (time.monotonic() - started)
        self.config.timeout_graceful_shutdown = max(left, FLUSH_GRACE_S)  # type: ignore[assignment]
        await super().shutdown(sockets)
