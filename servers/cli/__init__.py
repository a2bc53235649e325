"""The ``thinkedit`` command line: each command group lives in its own module."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

#: Modules that each add their sub-commands through ``register(subparsers)``.
COMMAND_MODULES = [
    "servers.cli.run_commands",
    "servers.cli.serve",
    "servers.cli.eval_commands",
    "servers.cli.data_commands",
    "servers.mcp.client_config",
]

#: Exit codes: success, runtime failure, bad usage or input.
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with every command group's sub-commands."""
    parser = argparse.ArgumentParser(
        prog="thinkedit",
        description="Think-while-Edit: edit an image, critique the result, refine the instruction, repeat.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="More logging (-vv for debug).")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


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
    return int(args.handler(args) or EXIT_OK)


if __name__ == "__main__":
    sys.exit(main())
