"""What the MCP server starts with, and what its lifespan opens once for every call to share.

The server answers ``initialize`` and ``tools/list`` at once; the Runner (LangGraph, the
checkpointer) and the backends open in the background, and a call that needs them awaits
``AppState.ready`` first. Nothing here imports LangGraph or the Runner at module level.

Over stdio the background work waits for the client's first message other than ``initialize``
(``open_after_handshake``): a desktop client starts the server and waits for that answer, and an
import on a worker thread would take turns with it for the interpreter. A server that starts before
its clients (HTTP) opens at once.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from thinkedit.agent.settings import LoopSettings, resolve_settings
from thinkedit.agent.settings_check import check_settings
from thinkedit.servers.mcp import DEFAULT_MAX_IMAGE_BYTES
from thinkedit.tools.config import default_data_dir
from thinkedit.tools.errors import BadInputError

if TYPE_CHECKING:
    from thinkedit.agent.nodes import BackendProvider
    from thinkedit.agent.runs import Runner
    from thinkedit.servers.mcp.image_args import ImageResolver
    from thinkedit.servers.mcp.live_runs import RunJobs

log = logging.getLogger(__name__)

@dataclass
class ServerConfig:
    """Hold the server's start-up options (the CLI fills it; tests may build one directly)."""

    profile: str = "tiny"
    editor_url: str | None = None
    editor_model: str | None = None
    thinker_url: str | None = None
    thinker_model: str | None = None
    data_dir: Path = field(default_factory=default_data_dir)
    #: The checkpointer URL (None: $THINKEDIT_CHECKPOINT_URL, else <data_dir>/checkpoints.sqlite).
    checkpoints_url: str | None = None
    #: A shared artifact store (None: $THINKEDIT_ARTIFACTS_URL, else <data_dir>/artifacts).
    artifacts_url: str | None = None
    roots: list[Path] | None = None
    allow_urls: bool = False
    #: Largest image accepted inline (data: URI) or by URL, decoded.
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    #: Resource links in results: by client name (``auto``), or for every client or none.
    resource_links: str = "auto"
    #: Open the Runner once the first client has its ``initialize`` answer (stdio), not at start-up (HTTP).
    open_after_handshake: bool = True


def base_settings(config: ServerConfig) -> LoopSettings:
    """Build the server's default loop settings: its profile, with any HTTP backends swapped in.

    A URL maps to backend ``openai-images`` (editor) or ``chat-model`` (thinker) with that
    ``base_url``, exactly as ``thinkedit edit --editor/--thinker URL`` does.
    """
    settings = resolve_settings(
        config.profile, data_dir=str(config.data_dir), editor_url=config.editor_url,
        editor_model=config.editor_model, thinker_url=config.thinker_url, thinker_model=config.thinker_model,
    )
    check_settings(settings)
    return settings


@dataclass
class AppState:
    """Hold the Runner, the backend cache, the live runs and the input policy of one server."""

    config: ServerConfig
    settings: LoopSettings
    runner: Runner = None  # type: ignore[assignment]
    backends: BackendProvider = None  # type: ignore[assignment]
    jobs: RunJobs = None  # type: ignore[assignment]
    images: ImageResolver = None  # type: ignore[assignment]
    error: BaseException | None = None
    opened: anyio.Event = field(default_factory=anyio.Event)
    #: Set by the first message other than ``initialize`` (``open_after_handshake``): the Runner may open.
    greeted: anyio.Event = field(default_factory=anyio.Event)
    #: The server stopped before it was greeted: nothing opens.
    closing: bool = False

    async def ready(self) -> AppState:
        """Wait until the Runner is open (raise the start-up error if it could not open)."""
        await self.opened.wait()
        if self.error is not None:
            raise BadInputError(f"the thinkedit server could not start: {self.error}")
        return self


def lifespan(
    config: ServerConfig, settings: LoopSettings, backends: BackendProvider | None, preload: str
) -> Callable[[Any], AbstractAsyncContextManager[AppState]]:
    """Return the server's lifespan: open the Runner in the background, stop live runs (resumably) on the way out.

    ``backends`` replaces the registry's backend cache (to embed the server beside other code);
    ``preload`` names the module the calls run (the handlers, and the agent behind them), imported
    in the background first so the first call does not wait for it.
    """

    @asynccontextmanager
    async def run(_: Any) -> AsyncIterator[AppState]:
        state = AppState(config, settings)
        if not config.open_after_handshake:
            state.greeted.set()
        async with anyio.create_task_group() as group, AsyncExitStack() as stack:
            group.start_soon(_open, state, stack, backends, preload)
            try:
                yield state
            finally:
                # The transport may be tearing down in a cancelled scope: finish the clean-up anyway,
                # or live runs are not marked for resumption and the checkpoint database stays open.
                with anyio.CancelScope(shield=True):
                    if not state.greeted.is_set():  # the client left before it needed anything opened
                        state.closing = True
                        state.greeted.set()
                    await state.opened.wait()
                    if state.jobs is not None:
                        await state.jobs.close()
                    await stack.aclose()

    return run


async def handshake_gate(ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
    """Server middleware: let the Runner open at the first message other than ``initialize`` (see the module)."""
    if ctx.method != "initialize":
        ctx.lifespan_context.greeted.set()
    return await call_next(ctx)


async def _open(state: AppState, stack: AsyncExitStack, backends: BackendProvider | None, preload: str) -> None:
    """Import the agent off the event loop, prime torch on this (the main) thread, then open the Runner.

    All of it waits until the server is greeted (see the module); a server closed first opens nothing.
    """
    config = state.config
    try:
        await state.greeted.wait()
        if state.closing:
            return
        await anyio.to_thread.run_sync(importlib.import_module, preload)
        from thinkedit.agent.runs import Runner
        from thinkedit.servers.mcp.image_args import ImageResolver, default_roots
        from thinkedit.servers.mcp.live_runs import RunJobs
        from thinkedit.tools.registry import IN_PROCESS_BACKENDS, BackendCache, prime_in_process_runtime

        models = (state.settings.editor, state.settings.thinker)
        if any(model.backend in IN_PROCESS_BACKENDS for model in models):
            # In-process models run on worker threads: torch's parallel runtime starts on the main thread
            # (this one), after torch itself is imported on a worker thread.
            await anyio.to_thread.run_sync(importlib.import_module, "torch")
            prime_in_process_runtime(*models)
        provider = backends or BackendCache(data_dir=config.data_dir)
        data_dir = config.data_dir.expanduser()
        runner = await stack.enter_async_context(
            Runner.open(data_dir, checkpoints=config.checkpoints_url, artifacts=config.artifacts_url, backends=provider)
        )
        roots = [*config.roots, data_dir] if config.roots else default_roots(data_dir)
        state.runner, state.backends = runner, provider
        state.jobs = RunJobs(runner, data_dir / "outputs")
        state.images = ImageResolver(runner, roots, max_bytes=config.max_image_bytes, allow_urls=config.allow_urls)
        log.info("thinkedit MCP server ready: profile %s, data in %s, roots %s", config.profile, data_dir, roots)
    except Exception as exc:  # noqa: BLE001 - reported to every call, the server stays up to say so
        log.exception("thinkedit MCP server could not open its runner")
        state.error = exc
    finally:
        state.opened.set()
