"""``thinkedit serve …``: start one of the servers (each registers from its own package)."""

from __future__ import annotations

import argparse
import importlib

#: Modules that each add one ``serve`` sub-command through ``register(subparsers)``.
SERVE_MODULES = ["thinkedit.servers.editor.cli", "thinkedit.servers.thinker.cli", "thinkedit.servers.mcp.cli"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``serve`` and its per-server sub-commands."""
    serve = subparsers.add_parser("serve", help="Run a server: editor, thinker or mcp.")
    servers = serve.add_subparsers(dest="server", required=True, metavar="SERVER")
    for name in SERVE_MODULES:
        importlib.import_module(name).register(servers)
