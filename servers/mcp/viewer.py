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
from importlib import resources
from typing import TYPE_CHECKING, Any

from mcp.server.apps import Apps, client_supports_apps
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from PIL.Image import Image

from thinkedit.agent.viewer import render_page, settings_view

if TYPE_CHECKING:  # the agent and the results load after start-up (see lifespan._open)
    from thinkedit.agent.runs import Runner

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


def for_apps(fn: ToolFn) -> ToolFn:
    """Wrap a run tool so that, for a client with MCP Apps, its result carries the viewer's extras in ``_meta``."""

    async def call(args: Any, ctx: Context) -> CallToolResult:
        from thinkedit.servers.mcp.results import MAX_RESULT_BYTES

        result = await fn(args, ctx)
        if not isinstance(result, CallToolResult):
            return result  # an input-required result (review by elicitation): no run view yet
        run_id = (result.structured_content or {}).get("run_id")
        if run_id and client_supports_apps(ctx):
            extras = await view_extras(ctx.request_context.lifespan_context.runner, run_id)
            result.meta = {**(result.meta or {}), VIEW_META: extras}
            if len(result.model_dump_json(by_alias=True, exclude_none=True).encode()) > MAX_RESULT_BYTES:
                extras.pop("rounds", None)  # raw thinker outputs are the bulk; the rest is small
        return result

    return call


async def view_extras(runner: Runner, run_id: str) -> dict[str, Any]:
    """Return what the viewer shows of a run beyond its ``RunResult``: models, settings, extra round fields."""
    from thinkedit.agent.trajectory import trajectory
    from thinkedit.servers.mcp.schemas import RoundInfo, RunResult

    record = runner.registry.load(run_id)
    state = await runner.state(run_id)
    extras: dict[str, Any] = {
        "editor": record.settings.editor.model,
        "thinker": record.settings.thinker.model,
        "profile": record.settings.profile,
        "settings": settings_view(record.settings),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }
    if state is None or state.source is None:
        return extras
    data = trajectory(state)
    skip = set(RunResult.model_fields) | {"source_image", "final_image", "rounds"}
    extras.update({k: v for k, v in data.items() if k not in skip and k not in extras})
    extras["rounds"] = {
        str(r["index"]): {k: v for k, v in r.items() if k not in RoundInfo.model_fields and v not in (None, "")}
        for r in data["rounds"]
    }
    return extras
