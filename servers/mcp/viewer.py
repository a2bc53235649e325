"""The run viewer as an MCP App: the shared run renderer plus a bridge script, served as a ``ui://`` resource.

Hosts with MCP Apps (``io.modelcontextprotocol/ui``) render it in a sandboxed iframe beside the
results of the tools that name it in ``_meta.ui.resourceUri``; it receives the tool result through
the Apps bridge (JSON-RPC over postMessage), reads round previews with ``resources/read``, polls
``get_run`` while a run goes on and answers reviews with ``review_run``. Hosts without Apps ignore
the metadata, and every tool result stays as it is for them; only a client that negotiated Apps
gets, under the result's ``_meta`` (which hosts keep from the model), what the viewer shows beyond
the result: the models, the settings, each round's raw thinker output and any other trajectory field.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from importlib import resources
from typing import TYPE_CHECKING, Any

from mcp.server.apps import Apps, client_supports_apps
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult

from thinkedit.agent.viewer import render_page

if TYPE_CHECKING:
    from PIL.Image import Image

APP_URI = "ui://thinkedit/run-viewer.html"
#: The tools whose results the viewer draws.
APP_TOOLS = ("think_while_edit", "get_run", "review_run")
#: The result ``_meta`` key holding the viewer's extras (clients with Apps only).
VIEW_META = "thinkedit/run-view"
#: Previews the viewer reads stay small: this side at most, as JPEG (hosts cap message sizes near 1 MB).
PREVIEW_SIDE = 512


def app_html() -> str:
    """Return the viewer's HTML document (renderer, stylesheet and bridge inlined; nothing fetched)."""
    bridge = resources.files("thinkedit.servers.mcp").joinpath("viewer-bridge.js").read_text("utf-8")
    return render_page(None, title="thinkedit run viewer", feed=bridge)


def apps_extension() -> Apps:
    """Return the MCP Apps extension serving the viewer (tools name it through their ``_meta``)."""
    apps = Apps()
    apps.add_html_resource(
        APP_URI,
        app_html(),
        name="run-viewer",
        title="thinkedit run viewer",
        description="A Think-while-Edit run: source, every round, a chart of the scores, reasoning, review buttons.",
        prefers_border=True,
    )
    return apps


def preview_jpeg(image: Image, side: int = PREVIEW_SIDE) -> bytes:
    """Return a small JPEG of ``image`` for the viewer (longest side at most ``side``)."""
    picture = image.convert("RGB")
    picture.thumbnail((side, side))
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=85)
    return out.getvalue()


ToolFn = Callable[[Any, Context], Awaitable[CallToolResult]]

#: True while a run tool answers a client with MCP Apps: ``results.tool_result`` then adds the viewer's extras.
FOR_APPS: ContextVar[bool] = ContextVar("thinkedit_for_apps", default=False)


def for_apps(fn: ToolFn) -> ToolFn:
    """Wrap a run tool so that, for a client with MCP Apps, its result carries the viewer's extras in ``_meta``."""

    async def call(args: Any, ctx: Context) -> CallToolResult:
        token = FOR_APPS.set(client_supports_apps(ctx))
        try:
            return await fn(args, ctx)
        finally:
            FOR_APPS.reset(token)

    return call
