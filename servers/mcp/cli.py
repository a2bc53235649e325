"""``thinkedit serve mcp``: serve the tools over stdio or streamable HTTP.

Nothing here imports the ``mcp`` SDK or pydantic at module level, so ``serve mcp --help`` is quick
and the CLI works without the ``mcp`` extra (and says how to install it when this command is used).
Over stdio the SDK's own transport serves the session: while it runs, fd 1 points at stderr, so stray
output of libraries misses the wire.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from thinkedit.servers.exposure import is_loopback, url_host
from thinkedit.servers.mcp import DEFAULT_MAX_IMAGE_MB
from thinkedit.servers.options import (
    add_address, add_allow_root, add_data_dir, add_model_servers, add_profile, add_storage_options, storage_urls,
)
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.locations import default_data_dir
from thinkedit.tools.secrets import register_secret

log = logging.getLogger(__name__)

TOKEN_ENV = "THINKEDIT_MCP_TOKEN"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``serve mcp``."""
    p = subparsers.add_parser("mcp")
    p.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="stdio",
        help="stdio (default; how Claude Desktop, Cursor, ... start servers) or streamable HTTP.",
    )
    add_address(p, port=8765, token_env=TOKEN_ENV)
    add_profile(p)
    add_model_servers(p)
    add_allow_root(p)
    p.add_argument("--allow-urls", action="store_true", help="Let image arguments be http(s) URLs (off by default).")
    p.add_argument(
        "--max-image-mb",
        type=float,
        default=float(DEFAULT_MAX_IMAGE_MB),
        help=f"Largest image accepted inline (data: URI) or by URL, in MiB (default {DEFAULT_MAX_IMAGE_MB}).",
    )
    p.add_argument(
        "--resource-links",
        choices=["auto", "always", "never"],
        default="auto",
        help="Resource links to full-size images in results: auto (default) gives them to clients that name "
        "themselves, not to the Python SDK's default client (what LangChain's adapters send), whose relays "
        "would pass thinkedit:// URLs to model APIs; always; never.",
    )
    add_data_dir(p)
    add_storage_options(p)
    p.set_defaults(handler=cmd_serve_mcp)


def _fail(message: str, code: int = 2) -> int:
    """Say what is wrong on stderr (stdout is the stdio transport's) and return the exit code."""
    print(f"thinkedit: error: {message}", file=sys.stderr)
    return code


def cmd_serve_mcp(args: argparse.Namespace) -> int:
    """Build the server from the options and run it until the client or a signal stops it."""
    token = args.token or os.environ.get(TOKEN_ENV) or None
    register_secret(token)  # kept out of errors and logs, like the keys in the environment
    if args.transport == "http" and not is_loopback(args.host) and not token:
        return _fail(f"binding {args.host} needs a bearer token: pass --token or set {TOKEN_ENV}")
    if args.max_image_mb <= 0:
        return _fail("--max-image-mb must be positive")
    data_dir = (args.data_dir or default_data_dir()).expanduser().resolve()
    try:
        import anyio

        server, config = _build(args, data_dir)
    except _Refused as exc:
        return _fail(*exc.args)
    if args.transport == "stdio":
        # Torch (for in-process models) is primed on this, the main, thread: see lifespan._open.
        anyio.run(server.run_stdio_async)
        return 0
    from thinkedit.servers.mcp.http_transport import serve_http  # uvicorn and starlette: HTTP only
    from thinkedit.tools.types import MAX_REFERENCES

    # A call brings at most an image and its references (edit_image, think_while_edit; critique_edit takes two);
    # as data: URIs they are base64 (4/3 of the bytes) inside JSON.
    max_body = (1 + MAX_REFERENCES) * config.max_image_bytes * 4 // 3 + 1024 * 1024
    guarded = " (bearer token required)" if token else ""
    print(f"thinkedit MCP server at http://{url_host(args.host)}:{args.port}/mcp{guarded}", file=sys.stderr, flush=True)
    try:
        anyio.run(lambda: serve_http(server, host=args.host, port=args.port, token=token, max_body_bytes=max_body))
    except KeyboardInterrupt:
        pass
    return 0


class _Refused(Exception):
    """Carry the message (and exit code) of a server that cannot be built from these options."""


def _build(args: argparse.Namespace, data_dir: Path) -> tuple[Any, Any]:
    """Import the SDK and the server, and build it from the options; raise ``_Refused`` saying why not."""
    try:
        from thinkedit.servers.mcp.server import build_server
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "mcp":
            raise _Refused("the MCP server needs the mcp extra: pip install 'thinkedit[mcp]'") from exc
        raise
    from pydantic import ValidationError

    from thinkedit.tools.errors import one_line
    from thinkedit.servers.mcp.lifespan import ServerConfig, base_settings
    from thinkedit.tools.profiles import missing_keys

    storage = storage_urls(args)
    config = ServerConfig(
        profile=args.profile,
        editor_url=args.editor,
        editor_model=args.editor_model,
        thinker_url=args.thinker,
        thinker_model=args.thinker_model,
        data_dir=data_dir,
        roots=[r.expanduser().resolve() for r in args.allow_root] if args.allow_root else None,
        allow_urls=args.allow_urls,
        max_image_bytes=int(args.max_image_mb * 1024 * 1024),
        resource_links=args.resource_links,
        checkpoints_url=storage["checkpoints"],
        artifacts_url=storage["artifacts"],
        open_after_handshake=args.transport == "stdio",
    )
    try:
        settings = base_settings(config)
        if missing := missing_keys(settings.editor, settings.thinker):
            raise _Refused(f"profile {args.profile} needs an API key in {', '.join('$' + k for k in missing)}, not set")
        return build_server(config, settings=settings), config
    except (BadInputError, ValidationError) as exc:
        raise _Refused(one_line(exc)) from exc
