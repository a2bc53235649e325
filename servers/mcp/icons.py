"""The server's and tools' icon: a small SVG carried as a ``data:`` URI, so no client fetches anything."""

from __future__ import annotations

import base64

from mcp_types import Icon

#: Two overlapping frames (the source and the edit) and a loop arrow (think, then edit again).
SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
<rect x="6" y="14" width="30" height="30" rx="4" fill="#4c8bf5"/>
<rect x="22" y="24" width="30" height="30" rx="4" fill="#f5a623" fill-opacity="0.9"/>
<path d="M44 6a14 14 0 0 1 14 14" fill="none" stroke="#3a3a3a" stroke-width="4" stroke-linecap="round"/>
<path d="M58 12v9h-9" fill="none" stroke="#3a3a3a" stroke-width="4" stroke-linecap="round" stroke-linejoin="round"/>
</svg>"""


def icons() -> list[Icon]:
    """Return the icon list the spec's ``icons`` fields take (one scalable SVG, any theme)."""
    src = "data:image/svg+xml;base64," + base64.b64encode(SVG.encode()).decode("ascii")
    return [Icon(src=src, mime_type="image/svg+xml", sizes=["any"])]
