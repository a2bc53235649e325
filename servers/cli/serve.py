"""``thinkedit serve …``: start one of the servers (each registers from its own package)."""

from __future__ import annotations

import argparse
import importlib
import logging

log = logging.getLogger(__name__)

#: Modules that each add one ``serve`` sub-command through ``register(subparsers)``.
SERVE_MODULES = ["servers.editor.cli", "servers.thinker.cli", "servers.mcp.cli"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``serve`` and its per-server sub-commands."""
    serve = subparsers.add_parser("serve", help="Run a server: editor, thinker or mcp.")
    servers = serve.add_subparsers(dest="server", required=True, metavar="SERVER")
    for name in SERVE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that server is not part of this build
            raise
        module.register(servers)
