"""The run viewer as an MCP App: the shared run renderer plus a bridge script, served as a ``ui://`` resource.

Hosts with MCP Apps (``io.modelcontextprotocol/ui``) render it in a sandboxed iframe beside the
results of the tools that name it in ``_meta.ui.resourceUri``; it receives the tool result through
the Apps bridge (JSON-RPC over postMessage), reads round previews with ``resources/read``, polls
``get_run`` while a run goes on and answers reviews with ``review_run``. Hosts without Apps ignore
the metadata, and every tool result stays as it is for them.
"""

from __future__ import annotations

import io
from importlib import resources

from mcp.server.apps import Apps
from PIL.Image import Image

from thinkedit.agent.viewer import render_page

APP_URI = "ui://thinkedit/run-viewer.html"
#: The tools whose results the viewer draws.
APP_TOOLS = ("think_while_edit", "get_run", "review_run")
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
