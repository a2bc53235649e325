"""What the server's lifespan builds once and every tool call shares (opened behind the handshake)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from thinkedit.agent.nodes import BackendProvider
    from thinkedit.agent.runs import Runner
    from thinkedit.agent.settings import LoopSettings
    from thinkedit.servers.mcp.config import ServerConfig
    from thinkedit.servers.mcp.inputs import ImageResolver
    from thinkedit.servers.mcp.jobs import RunJobs


@dataclass
class AppState:
    """Hold the Runner, the backend cache, the live runs and the input policy of one server.

    The server answers ``initialize`` and ``tools/list`` at once; the Runner (LangGraph, the
    checkpointer) opens in the background, and a call that needs it awaits ``ready`` first.
    """

    config: ServerConfig
    settings: LoopSettings
    runner: Runner = None  # type: ignore[assignment]
    backends: BackendProvider = None  # type: ignore[assignment]
    jobs: RunJobs = None  # type: ignore[assignment]
    images: ImageResolver = None  # type: ignore[assignment]
    error: BaseException | None = None
    opened: anyio.Event = field(default_factory=anyio.Event)

    def open(self, runner: Runner, backends: BackendProvider, jobs: RunJobs, images: ImageResolver) -> None:
        """Fill in what the background start-up opened and wake the waiting calls."""
        self.runner, self.backends, self.jobs, self.images = runner, backends, jobs, images
        self.opened.set()

    def fail(self, error: BaseException) -> None:
        """Record why start-up failed; every waiting and later call reports it."""
        self.error = error
        self.opened.set()

    async def ready(self) -> AppState:
        """Wait until the Runner is open (raise the start-up error if it could not open)."""
        await self.opened.wait()
        if self.error is not None:
            from thinkedit.tools.errors import BadInputError

            raise BadInputError(f"the thinkedit server could not start: {self.error}")
        return self
