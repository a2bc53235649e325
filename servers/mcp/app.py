"""Build the thinkedit MCP server: its tools, resources, and a lifespan that opens the Runner."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from mcp_types import InputRequiredResult
from pydantic import BaseModel

from thinkedit.servers.exposure import is_loopback
from thinkedit.servers.mcp.config import ServerConfig, base_settings, server_models
from thinkedit.servers.mcp.icons import icons
from thinkedit.servers.mcp.resources import register_resources
from thinkedit.servers.mcp.sdk import build_tool
from thinkedit.servers.mcp.schemas import (
    CancelRunInput,
    CritiqueEditInput,
    CritiqueOutput,
    EditImageInput,
    EditOutput,
    GetRunInput,
    ListModelsInput,
    ModelsOutput,
    ReviewRunInput,
    RunResult,
    ThinkWhileEditInput,
)
from thinkedit.servers.mcp.state import AppState
from thinkedit.servers.mcp.viewer import APP_URI, apps_extension, for_apps
from thinkedit.tools.errors import BadInputError

if TYPE_CHECKING:
    from thinkedit.agent.nodes import BackendProvider

log = logging.getLogger(__name__)

#: What the server imports behind the handshake: the tools and, through them, LangGraph and the agent.
TOOLS_MODULE = "thinkedit.servers.mcp.tools"

INSTRUCTIONS = """\
thinkedit edits images with the Think-while-Edit loop: an editor edits, a multimodal thinker scores
the result (semantic and quality, 0-10) and refines the instruction, until the edit is right.
Use think_while_edit for an edit that should be checked and improved; edit_image for one quick edit;
critique_edit to judge any edit. Images are file paths under the server's allowed roots, data: URIs,
or thinkedit:// URIs of earlier results (chain edits with thinkedit://runs/<run_id>/final.png).
A long run returns status 'running' with a run_id: call get_run to wait for it."""

ToolFn = Callable[[Any, Context], Awaitable[CallToolResult | InputRequiredResult]]


class _tools:  # noqa: N801 - stands in for the tools module until it is imported
    """Name the tool functions without importing them: each call waits for start-up, then runs the real one."""

    def __getattr__(self, name: str) -> ToolFn:
        async def call(args: Any, ctx: Context) -> CallToolResult:
            await ctx.request_context.lifespan_context.ready()
            return await getattr(importlib.import_module(TOOLS_MODULE), name)(args, ctx)

        call.__name__ = call.__qualname__ = name
        return call


tools = _tools()


@dataclass(frozen=True)
class ToolSpec:
    """Name a tool, its function, its wire schemas and what a client should know of it."""

    name: str
    title: str
    fn: ToolFn
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    description: str
    read_only: bool = False
    open_world: bool = False
    #: The MCP App (``ui://`` resource) that draws this tool's results, for hosts with Apps.
    app: str | None = None
    #: Calling again with the same arguments changes nothing more (the spec's ``idempotentHint``).
    idempotent: bool = False
    #: May undo or end work already done (the spec's ``destructiveHint``; only without ``read_only``).
    destructive: bool = False
    #: Calls the editor or thinker (remote ones make it ``open_world``).
    uses_models: bool = False


TOOL_SPECS = [
    ToolSpec(
        "think_while_edit",
        "Edit an image, checking and refining until it is right",
        for_apps(tools.think_while_edit),
        ThinkWhileEditInput,
        RunResult,
        "Edit an image following an instruction, then let a multimodal thinker critique the result and "
        "refine the instruction, repeating until the edit is right or max_rounds is reached. Returns the "
        "chosen round's image (a preview; the full-size PNG by resource link and file path) and the "
        "trajectory: each round's instruction, scores (semantic, quality 0-10) and reasoning. Reports "
        "progress at each phase of each round. A run longer than wait_seconds returns "
        "{run_id, status: 'running'} and goes on: call get_run with the run_id.",
        app=APP_URI,
        uses_models=True,
    ),
    ToolSpec(
        "edit_image",
        "Edit an image once",
        tools.edit_image,
        EditImageInput,
        EditOutput,
        "Make one edit with the editor, without critique or refinement. Returns the edited image (a "
        "preview; the full-size PNG by resource link and file path).",
        uses_models=True,
    ),
    ToolSpec(
        "critique_edit",
        "Judge an edit",
        tools.critique_edit,
        CritiqueEditInput,
        CritiqueOutput,
        "Ask the thinker to judge how well an edited image follows an instruction, compared with the "
        "source: semantic and quality scores (0-10), reasoning, and a refined instruction.",
        read_only=True,
        uses_models=True,
    ),
    ToolSpec(
        "get_run",
        "Get a run",
        for_apps(tools.get_run),
        GetRunInput,
        RunResult,
        "Return a think_while_edit run by run_id, waiting up to wait_seconds for it to finish. A run "
        "that a server restart interrupted is resumed from its last checkpoint (resume=true, the default).",
        app=APP_URI,
        idempotent=True,
        uses_models=True,
    ),
    ToolSpec(
        "review_run",
        "Review a paused run",
        for_apps(tools.review_run),
        ReviewRunInput,
        RunResult,
        "Answer a think_while_edit run started with review=true that returned status 'awaiting_review': "
        "'approve' the proposed instruction, 'edit' with your own instruction, or 'stop' and keep the best "
        "round so far. Returns the run at its next pause or its end.",
        app=APP_URI,
        uses_models=True,
    ),
    ToolSpec(
        "cancel_run",
        "Cancel a run",
        tools.cancel_run,
        CancelRunInput,
        RunResult,
        "Stop a running think_while_edit run at its next safe point and mark it cancelled; finished rounds are kept.",
        idempotent=True,
        destructive=True,
    ),
    ToolSpec(
        "list_models",
        "List editors and thinkers",
        tools.list_models,
        ListModelsInput,
        ModelsOutput,
        "List the server's default editor and thinker, and the profiles whose editor or thinker a call may name.",
        read_only=True,
        idempotent=True,
    ),
]


def build_server(config: ServerConfig, backends: BackendProvider | None = None) -> MCPServer[AppState]:
    """Build the server; the Runner and backends open in its lifespan, not at import time.

    ``backends`` replaces the registry's backend cache (to embed the server beside other code).
    """
    settings = base_settings(config)  # fail fast on a bad profile, before any transport starts
    if config.resource_links not in {"auto", "always", "never"}:
        raise BadInputError(f"resource_links must be auto, always or never, not {config.resource_links!r}")

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        """Open the Runner in the background for the server's life; stop live runs (resumably) on the way out."""
        state = AppState(config, settings)
        async with anyio.create_task_group() as group, AsyncExitStack() as stack:
            group.start_soon(_open, state, stack, backends)
            try:
                yield state
            finally:
                # The transport may be tearing down in a cancelled scope: finish the clean-up anyway,
                # or live runs are not marked for resumption and the checkpoint database stays open.
                with anyio.CancelScope(shield=True):
                    await state.opened.wait()
                    if state.jobs is not None:
                        await state.jobs.close()
                    await stack.aclose()

    server: MCPServer[AppState] = MCPServer(
        "thinkedit",
        title="thinkedit: Think-while-Edit image editing",
        instructions=INSTRUCTIONS,
        version=_version(),
        lifespan=lifespan,
        tools=[build_tool(spec, open_world=_open_world(spec, config, settings), icons=icons()) for spec in TOOL_SPECS],
        icons=icons(),
        log_level="WARNING",
        extensions=[apps_extension()],
    )
    register_resources(server)
    return server


def _open_world(spec: ToolSpec, config: ServerConfig, settings: Any) -> bool:
    """Say whether a tool reaches beyond this machine: images by URL, or an editor/thinker elsewhere."""
    if spec.open_world:
        return True
    if not spec.uses_models:
        return False
    if config.allow_urls:
        return True
    urls = [c.base_url for c in (settings.editor, settings.thinker) if c.base_url]
    return any(not is_loopback(urlsplit(url).hostname or "") for url in urls)


async def _open(state: AppState, stack: AsyncExitStack, backends: BackendProvider | None) -> None:
    """Import the agent off the event loop, prime torch on this (the main) thread, then open the Runner."""
    config = state.config
    try:
        await anyio.to_thread.run_sync(importlib.import_module, TOOLS_MODULE)
        from thinkedit.agent.runs import Runner
        from thinkedit.servers.mcp.inputs import ImageResolver, default_roots
        from thinkedit.servers.mcp.jobs import RunJobs
        from thinkedit.tools.registry import IN_PROCESS_BACKENDS, BackendCache, prime_in_process_runtime

        models = server_models(config)
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
        images = ImageResolver(runner, roots, max_bytes=config.max_image_bytes, allow_urls=config.allow_urls)
        state.open(runner, provider, RunJobs(runner, data_dir / "outputs"), images)
        log.info("thinkedit MCP server ready: profile %s, data in %s, roots %s", config.profile, data_dir, roots)
    except Exception as exc:  # noqa: BLE001 - reported to every call, the server stays up to say so
        log.exception("thinkedit MCP server could not open its runner")
        state.fail(exc)


def _version() -> str:
    """Report the installed package version to clients (0.1.0 from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("thinkedit")
    except PackageNotFoundError:
        return "0.1.0"
