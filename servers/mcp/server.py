"""Build the thinkedit MCP server: the tool catalogue, the one dispatch into the handlers, the resources.

Each tool's input and output schemas are our pydantic models (``schemas``), not a function's
signature, so ``build_tool`` constructs the SDK's ``Tool`` with a ``FuncMetadata`` and an
``ArgModelBase`` itself: those are the SDK internals we depend on (``tests/test_mcp_sdk.py`` checks
them against the installed SDK). The SDK validates a call's arguments into the input model once;
``dispatch`` waits for start-up, then hands that model to the handler of the tool's name
(``handlers``, imported with the agent behind it in the background after start-up).
"""

from __future__ import annotations

import base64
import importlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.types import CallToolResult, ToolAnnotations
from mcp_types import Icon, InputRequiredResult
from pydantic import BaseModel, create_model

from thinkedit.servers.exposure import is_loopback
from thinkedit.servers.mcp.lifespan import AppState, ServerConfig, base_settings, handshake_gate, lifespan
from thinkedit.servers.mcp.resources import register_resources
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
from thinkedit.servers.mcp.viewer import APP_URI, apps_extension, for_apps
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.secrets import mask_secrets

if TYPE_CHECKING:
    from thinkedit.agent.nodes import BackendProvider
    from thinkedit.agent.settings import LoopSettings

log = logging.getLogger(__name__)

#: The module of the tool handlers: imported in the background at start-up (it brings LangGraph and the agent).
HANDLERS = "thinkedit.servers.mcp.handlers"

INSTRUCTIONS = """\
thinkedit edits images with the Think-while-Edit loop: an editor edits, a multimodal thinker scores
the result (semantic and quality, 0-10) and refines the instruction, until the edit is right.
Use think_while_edit for an edit that should be checked and improved; edit_image for one quick edit;
critique_edit to judge any edit. Images are file paths under the server's allowed roots, data: URIs,
or thinkedit:// URIs of earlier results (chain edits with thinkedit://runs/<run_id>/final.png).
A long run returns status 'running' with a run_id: call get_run to wait for it."""

#: Two overlapping frames (the source and the edit) and a loop arrow (think, then edit again).
SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
<rect x="6" y="14" width="30" height="30" rx="4" fill="#4c8bf5"/>
<rect x="22" y="24" width="30" height="30" rx="4" fill="#f5a623" fill-opacity="0.9"/>
<path d="M44 6a14 14 0 0 1 14 14" fill="none" stroke="#3a3a3a" stroke-width="4" stroke-linecap="round"/>
<path d="M58 12v9h-9" fill="none" stroke="#3a3a3a" stroke-width="4" stroke-linecap="round" stroke-linejoin="round"/>
</svg>"""

ToolFn = Callable[[Any, Context], Awaitable[CallToolResult | InputRequiredResult]]


@dataclass(frozen=True)
class ToolSpec:
    """Name a tool (its handler has the same name), its wire schemas and what a client should know of it."""

    name: str
    title: str
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
        EditImageInput,
        EditOutput,
        "Make one edit with the editor, without critique or refinement. Returns the edited image (a "
        "preview; the full-size PNG by resource link and file path).",
        uses_models=True,
    ),
    ToolSpec(
        "critique_edit",
        "Judge an edit",
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
        CancelRunInput,
        RunResult,
        "Stop a running think_while_edit run at its next safe point and mark it cancelled; finished rounds are kept.",
        idempotent=True,
        destructive=True,
    ),
    ToolSpec(
        "list_models",
        "List editors and thinkers",
        ListModelsInput,
        ModelsOutput,
        "List the server's default editor and thinker, and the profiles whose editor or thinker a call may name.",
        read_only=True,
        idempotent=True,
    ),
]


def build_server(
    config: ServerConfig, backends: BackendProvider | None = None, settings: LoopSettings | None = None
) -> MCPServer[AppState]:
    """Build the server; the Runner and backends open in its lifespan, not at import time.

    ``backends`` replaces the registry's backend cache (to embed the server beside other code);
    ``settings`` are the server's default settings when the caller resolved them already.
    """
    settings = settings or base_settings(config)  # fail fast on a bad profile, before any transport starts
    if config.resource_links not in {"auto", "always", "never"}:
        raise BadInputError(f"resource_links must be auto, always or never, not {config.resource_links!r}")
    server: MCPServer[AppState] = MCPServer(
        "thinkedit",
        title="thinkedit: Think-while-Edit image editing",
        instructions=INSTRUCTIONS,
        version=_version(),
        lifespan=lifespan(config, settings, backends, preload=HANDLERS),
        tools=[
            build_tool(spec, dispatch(spec), open_world=_open_world(spec, config, settings), icons=icons())
            for spec in TOOL_SPECS
        ],
        icons=icons(),
        log_level="WARNING",
        extensions=[apps_extension()],
        middleware=[handshake_gate],
    )
    register_resources(server)
    return server


class _WholeModel(ArgModelBase):
    """Hand the validated input model to the tool function whole, as ``args`` (the SDK validated it once)."""

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"args": self}


def dispatch(spec: ToolSpec) -> ToolFn:
    """Return the function that runs a tool: wait for start-up, then call the handler of the tool's name."""

    async def call(args: Any, ctx: Context) -> CallToolResult | InputRequiredResult:
        await ctx.request_context.lifespan_context.ready()  # the handlers are imported by then
        handler = getattr(importlib.import_module(HANDLERS), spec.name)
        return await (for_apps(handler) if spec.app else handler)(args, ctx)

    return call


def build_tool(spec: ToolSpec, fn: ToolFn, *, open_world: bool | None = None, icons: list[Icon] | None = None) -> Tool:
    """Make the SDK tool that validates a call's arguments into the spec's input model and runs ``fn`` with it.

    Its annotations follow the spec's hints; ``open_world`` overrides the spec's own (the server knows
    where its models live).
    """
    arg_model = create_model(
        spec.input_model.__name__, __base__=(spec.input_model, _WholeModel), __doc__=spec.input_model.__doc__
    )

    async def call(args: BaseModel, ctx: Context) -> CallToolResult | InputRequiredResult:
        """Run ``fn`` and turn input problems into tool errors the model can read."""
        try:
            return await fn(args, ctx)
        except BadInputError as exc:
            raise ToolError(str(exc) or type(exc).__name__) from exc
        except ToolError:
            raise
        except Exception as exc:  # noqa: BLE001 - a tool error always says why, never an empty message
            log.warning("tool %s failed: %s: %s", spec.name, type(exc).__name__, exc, exc_info=exc)
            raise ToolError(mask_secrets(f"{spec.name} failed: {type(exc).__name__}: {exc}")) from exc

    return Tool(
        fn=call,
        name=spec.name,
        title=spec.title,
        description=spec.description,
        parameters=arg_model.model_json_schema(by_alias=True),
        fn_metadata=FuncMetadata(
            arg_model=arg_model, output_model=spec.output_model, output_schema=output_schema(spec.output_model)
        ),
        is_async=True,
        context_kwarg="ctx",
        # An MCP App (ui:// resource) that draws the results, for hosts with Apps.
        meta={"ui": {"resourceUri": spec.app}} if spec.app else None,
        annotations=ToolAnnotations(
            title=spec.title,
            read_only_hint=spec.read_only,
            # The spec defines destructiveHint only for tools that are not read-only.
            destructive_hint=None if spec.read_only else spec.destructive,
            idempotent_hint=spec.idempotent,
            open_world_hint=spec.open_world if open_world is None else open_world,
        ),
        icons=icons,
    )


@cache
def output_schema(model: type[BaseModel]) -> dict[str, Any] | None:
    """Return a tool's output schema as the SDK derives it, once per model (four run tools share ``RunResult``)."""
    return FuncMetadata(arg_model=ArgModelBase, output_model=model).output_schema


def icons() -> list[Icon]:
    """Return the server's and tools' icon: one scalable SVG as a ``data:`` URI, so no client fetches anything."""
    src = "data:image/svg+xml;base64," + base64.b64encode(SVG.encode()).decode("ascii")
    return [Icon(src=src, mime_type="image/svg+xml", sizes=["any"])]


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


def _version() -> str:
    """Report the installed package version to clients (0.1.0 from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("thinkedit")
    except PackageNotFoundError:
        return "0.1.0"
