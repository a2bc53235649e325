"""The ``thinkedit`` command line: each command group lives in its own module.

Building the parser imports only the light option modules; each command imports what it needs
when it runs, so ``thinkedit --help`` works on a core install and a command whose extra is
missing says which one to install.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

#: Modules that each add their sub-commands through ``register(subparsers)``.
COMMAND_MODULES = [
    "thinkedit.servers.cli.run_commands",
    "thinkedit.servers.cli.serve",
    "thinkedit.servers.cli.eval_commands",
    "thinkedit.servers.cli.data_commands",
    "thinkedit.servers.cli.models_command",
    "thinkedit.servers.mcp.client_config",
]

#: Exit codes: success, runtime failure, bad usage or input.
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def version() -> str:
    """Return the installed distribution's version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("thinkedit")
    except PackageNotFoundError:  # pragma: no cover - running from an unpacked tree
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with every command group's sub-commands."""
    parser = argparse.ArgumentParser(
        prog="thinkedit",
        description="Think-while-Edit: edit an image, critique the result, refine the instruction, repeat.",
    )
    parser.add_argument("--version", action="version", version=f"thinkedit {version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="More logging (-vv for debug).")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def command_name(args: argparse.Namespace) -> str:
    """Return the command as typed, e.g. ``thinkedit serve editor``."""
    words = [args.command, getattr(args, "server", None)]
    return " ".join(["thinkedit", *(w for w in words if w)])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    if not args.verbose:
        # Model libraries draw progress bars on stderr; ours is the progress display.
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from thinkedit.tools.errors import MissingExtraError
    from thinkedit.tools.extras import missing_extra

    try:
        return int(args.handler(args) or EXIT_OK)
    except MissingExtraError as exc:
        print(f"thinkedit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as exc:
        error = missing_extra(exc, command_name(args))
        if error is None:
            raise
        print(f"thinkedit: error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
