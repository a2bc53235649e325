"""Command-line options more than one command takes, each declared once here: storage, profile, servers, address.

Every parser that takes one of these options adds it with the function here, so its name, type,
default and help are the same wherever it appears. Kept light (argparse, the standard library and
our config types) so that building the parser, and so ``thinkedit --help``, imports nothing heavy.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from thinkedit.tools.locations import (
    ARTIFACTS_URL_ENV, CHECKPOINT_URL_ENV, DEFAULT_PROFILE, PROFILE_ENV, available_profiles, default_profile, is_url,
    storage_locations,
)


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


def out_folder(text: str) -> Path:
    """Parse an output folder: refuse, before any work, a file, a path inside a file or under a folder we cannot write."""
    import os

    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; the files go into a folder")
    existing = next(parent for parent in (path, *path.absolute().parents) if parent.exists())
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{text} lies inside {existing}, which is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: the folder {existing} is not writable")
    return path


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
    artifacts = storage_locations(artifacts=args.artifacts)[1]
    if artifacts and not is_url(artifacts):
        artifacts = str(Path(artifacts).expanduser().resolve())
    return {"checkpoints": args.checkpoints, "artifacts": artifacts}


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    """Add ``--data-dir DIR``: where runs, artifacts and checkpoints live unless URLs say otherwise."""
    parser.add_argument("--data-dir", type=Path, metavar="DIR",
                        help="Runs, artifacts, checkpoints (default $THINKEDIT_DATA_DIR or ~/.thinkedit).")


def add_profile(
    parser: argparse.ArgumentParser, *, from_env: bool = True,
    when_unset: str = f"${PROFILE_ENV}, else {DEFAULT_PROFILE}",
) -> None:
    """Add ``--profile``: the editor + thinker pair, a packaged name or a TOML file (``when_unset`` says the default).

    ``from_env``: without the option, ``$THINKEDIT_PROFILE`` (else tiny), as every run resolves it; else None.
    """
    parser.add_argument("--profile", default=default_profile() if from_env else None,
                        help=f"Editor + thinker pair: {', '.join(available_profiles())} or a TOML file "
                        f"(default: {when_unset}).")


def add_model_servers(parser: argparse.ArgumentParser) -> None:
    """Add ``--editor URL``, ``--thinker URL`` and the model names to ask them for (overriding the profile's)."""
    parser.add_argument("--editor", metavar="URL", type=server_url,
                        help="Use the editor server at URL (OpenAI Images API: thinkedit serve editor, vLLM-Omni, ...).")
    parser.add_argument("--editor-model", help="Model name to ask the editor server for (default: the profile's).")
    parser.add_argument("--thinker", metavar="URL", type=server_url,
                        help="Use the thinker server at URL (OpenAI chat API: vLLM, thinkedit serve thinker, ...).")
    parser.add_argument("--thinker-model",
                        help="Thinker model: a name for the --thinker server, or provider:model for a hosted one "
                        "(anthropic:claude-sonnet-5, google_genai:gemini-3.5-flash, openai:gpt-4.1; key from "
                        "ANTHROPIC_API_KEY, GOOGLE_API_KEY, OPENAI_API_KEY). Default: the profile's.")


def add_address(parser: argparse.ArgumentParser, port: int, token_env: str = "THINKEDIT_TOKEN") -> None:
    """Add ``--host``, ``--port`` and ``--token``: where a server listens, and the token any other address needs."""
    parser.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1; others need --token).")
    parser.add_argument("--port", type=port_number, default=port, help=f"Port (default {port}).")
    parser.add_argument("--token", help=f"Bearer token clients must send (default ${token_env}).")


def add_allow_root(parser: argparse.ArgumentParser) -> None:
    """Add ``--allow-root DIR`` (repeatable): the folders the MCP server may read image paths from."""
    parser.add_argument("--allow-root", type=Path, action="append", metavar="DIR",
                        help="Allow image paths under DIR (repeatable; default: the working directory). "
                        "The data directory is always allowed.")


def add_max_rounds(parser: argparse.ArgumentParser) -> None:
    """Add ``--max-rounds N``: at most this many edits per run."""
    parser.add_argument("--max-rounds", type=int_at_least(1), help="At most this many edits (profile default, else 5).")


def add_record(parser: argparse.ArgumentParser) -> None:
    """Add ``--record DIR``: record each finished run's trajectory into a dataset directory."""
    parser.add_argument("--record", type=Path, metavar="DIR",
                        help="Also record the trajectory (images, instructions, verdicts) into this dataset directory.")
