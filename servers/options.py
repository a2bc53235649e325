"""Command-line options every server and command shares: numbers, server URLs, storage URLs.

Kept light (argparse, the standard library and our config types) so that building the parser, and so
``thinkedit --help``, imports nothing heavy.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from thinkedit.tools.locations import ARTIFACTS_URL_ENV, CHECKPOINT_URL_ENV


def int_at_least(minimum: int) -> Callable[[str], int]:
    """Return an argparse type for whole numbers >= ``minimum`` (errors become exit code 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def port_number(text: str) -> int:
    """Accept a TCP port, 0 to 65535 (0 lets the system choose)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {value}")
    return value


def server_url(text: str) -> str:
    """Parse a server URL; a bare host:port gets the OpenAI-style ``/v1`` path the SDKs expect."""
    from thinkedit.tools.config import is_http_url

    if not is_http_url(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL, e.g. http://127.0.0.1:8100/v1")
    parsed = urlsplit(text)
    if parsed.path in ("", "/"):
        parsed = parsed._replace(path="/v1")
    return urlunsplit(parsed)


def add_storage_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--checkpoints URL`` and ``--artifacts URL``: where runs live, so machines can share them."""
    parser.add_argument("--checkpoints", metavar="URL",
                        help="Checkpointer: sqlite:///path/file.sqlite or postgresql://user:pass@host:port/db "
                        f"(default ${CHECKPOINT_URL_ENV}, else <data dir>/checkpoints.sqlite).")
    parser.add_argument("--artifacts", metavar="URL",
                        help="Shared artifact store and run records: a directory or an fsspec URL "
                        f"(file://, s3://...; default ${ARTIFACTS_URL_ENV}, else <data dir>/artifacts).")


def storage_urls(args: argparse.Namespace) -> dict[str, str | None]:
    """Return the Runner.open keywords the storage options give (env and defaults apply there)."""
    from thinkedit.tools.store import is_url

    artifacts = args.artifacts or os.environ.get(ARTIFACTS_URL_ENV) or None
    if artifacts and not is_url(artifacts):
        artifacts = str(Path(artifacts).expanduser().resolve())
    return {"checkpoints": args.checkpoints, "artifacts": artifacts}
