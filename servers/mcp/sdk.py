"""The one place that uses the ``mcp`` SDK's internals: tools built from our wire models, stdio on our streams.

``MCPServer.add_tool`` derives a tool's schema from a function's signature; ours come from
pydantic models with ``extra="forbid"`` (one model per tool, shared with the HTTP API's style), so
we construct the SDK's ``Tool`` with a ``FuncMetadata`` ourselves. Those two names are not part of
the SDK's documented surface: everything that depends on them is in this module, and
``tests/test_mcp_sdk.py`` checks it against the installed SDK. ``run_stdio_streams`` does what
``MCPServer.run_stdio_async`` does, on streams the fast-start front owns (``stdio.StdioFront``),
which needs ``MCPServer``'s low-level server.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.server.stdio import stdio_server
from mcp.types import CallToolResult, ToolAnnotations
from mcp_types import Icon, InputRequiredResult
from pydantic import BaseModel, create_model

from thinkedit.tools.errors import BadInputError
from thinkedit.tools.secrets import mask_secrets

log = logging.getLogger(__name__)


class ToolDescription(Protocol):
    """What ``build_tool`` needs to know of a tool (``app.ToolSpec`` is one)."""

    name: str
    title: str
    fn: Callable[[Any, Context], Awaitable[CallToolResult | InputRequiredResult]]
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    description: str
    read_only: bool
    open_world: bool


def build_tool(spec: ToolDescription, *, open_world: bool | None = None, icons: list[Icon] | None = None) -> Tool:
    """Make an SDK tool whose input and output schemas come from the spec's pydantic models.

    Its annotations follow the spec's hints (``idempotent``/``destructive`` when the spec has them);
    ``open_world`` overrides the spec's own (the server knows where its models live).
    """
    arg_model = create_model(
        spec.input_model.__name__, __base__=(spec.input_model, ArgModelBase), __doc__=spec.input_model.__doc__
    )

    async def call(ctx: Context, **arguments: Any) -> CallToolResult | InputRequiredResult:
        """Rebuild the input model and turn input problems into tool errors the model can read."""
        args = spec.input_model.model_validate(arguments)
        try:
            return await spec.fn(args, ctx)
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
        fn_metadata=FuncMetadata(arg_model=arg_model, output_model=spec.output_model),
        is_async=True,
        context_kwarg="ctx",
        # An MCP App (ui:// resource) that draws the results, for hosts with Apps (optional on a spec).
        meta={"ui": {"resourceUri": app}} if (app := getattr(spec, "app", None)) else None,
        annotations=ToolAnnotations(
            title=spec.title,
            read_only_hint=spec.read_only,
            # The spec defines destructiveHint only for tools that are not read-only.
            destructive_hint=None if spec.read_only else bool(getattr(spec, "destructive", False)),
            idempotent_hint=bool(getattr(spec, "idempotent", False)),
            open_world_hint=spec.open_world if open_world is None else open_world,
        ),
        icons=icons,
    )


async def run_stdio_streams(server: MCPServer[Any], stdin: Any, stdout: Any) -> None:
    """Serve one stdio session over ``stdin`` (async lines) and ``stdout`` (async ``write``/``flush``).

    The SDK's ``stdio_server`` takes explicit streams (and then leaves fd 0 and 1 to their owner), but
    ``MCPServer.run_stdio_async`` always opens its own: its low-level server is run on ours the same way.
    """
    lowlevel = server._lowlevel_server  # noqa: SLF001 - the one place we reach inside MCPServer
    async with stdio_server(stdin=stdin, stdout=stdout) as (read_stream, write_stream):
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
