"""Markdown helpers the generators share."""

from __future__ import annotations

from typing import Any


def cell(text: Any) -> str:
    """Return ``text`` as one table cell: one line, pipes escaped, ``<placeholders>`` shown rather than read as HTML."""
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
