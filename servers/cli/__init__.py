"""The ``thinkedit`` command line: each command group lives in its own module.

The parser is built lazily (``dispatch.lazy_commands``): ``thinkedit --help`` lists the commands
from a table without importing their modules, and a command line imports only the module of the
command it names. Each command imports what it needs when it runs, so ``thinkedit --help`` works
on a core install and a command whose extra is missing says which one to install.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from thinkedit.servers.cli.commands import COMMANDS
from thinkedit.servers.cli.dispatch import lazy_commands

#: Exit codes: success, runtime failure, bad usage or input, interrupted (Ctrl-C, as shells count it).
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def version() -> str:
    """Return the installed distribution's version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("thinkedit")
    except PackageNotFoundError:  # pragma: no cover - running from an unpacked tree
        return "unknown"


class CommandParser(argparse.ArgumentParser):
    """Take the global flags after any sub-command too, and say a usage error in one line."""

    def __init__(self, *args: Any, top: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_global_flags(self, top)

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE`` and where to look, in one line; exit 2 (argparse prints the usage too).

        A missing command lists the choices, as an unknown one does.
        """
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and message.endswith(f"required: {action.metavar}"):
                message += f" (choose from {', '.join(map(repr, action.choices))})"
        self.exit(EXIT_USAGE, f"{self.prog}: error: {' '.join(message.split())} (see: {self.prog} --help)\n")


def add_global_flags(parser: argparse.ArgumentParser, top: bool) -> None:
    """Add ``--version`` and ``-v`` to the top parser or a command's."""
    parser.add_argument("--version", action=_Version, nargs=0, help="Print the version and exit.")
    # After a command, -v counts apart: argparse copies a command's values over the top's, so one dest would lose
    # the -v given before the command; main() adds the two.
    parser.add_argument("-v", "--verbose", action="count", dest="verbose" if top else "verbose_after",
                        default=0 if top else argparse.SUPPRESS,
                        help="Say more: info logs and other libraries' warnings (-vv: debug). "
                        "Default: $THINKEDIT_LOG_LEVEL, else warning.")


class _Version(argparse.Action):
    """Print ``thinkedit VERSION`` and exit; the version is looked up only when asked (it costs an import)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(f"thinkedit {version()}")
        parser.exit()


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Build the parser: for the command ``argv`` names (the others only as names in ``--help``), or,
    with ``argv`` None, with every command's options (tests and docs)."""
    parser = CommandParser(
        prog="thinkedit",
        description="Think-while-Edit: edit an image, critique the result, refine the instruction, repeat.",
        top=True,
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandParser)
    lazy_commands(subparsers, COMMANDS, argv)
    return parser


def command_name(args: argparse.Namespace) -> str:
    """Return the command as typed, e.g. ``thinkedit serve editor``."""
    words = [args.command, getattr(args, "server", None)]
    return " ".join(["thinkedit", *(w for w in words if w)])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    from thinkedit.servers.cli.errors import fail
    from thinkedit.servers.cli.verbosity import configure_logging, log_level
    from thinkedit.tools.errors import BadInputError, one_line
    from thinkedit.tools.extras import missing_extra

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        level = log_level(args.verbose + getattr(args, "verbose_after", 0))
    except BadInputError as exc:
        return fail(str(exc), EXIT_USAGE)
    configure_logging(level)
    try:
        return int(args.handler(args) or EXIT_OK)
    except BadInputError as exc:  # a missing extra, or bad input a command left to us
        return fail(one_line(exc), EXIT_USAGE)
    except ModuleNotFoundError as exc:
        error = missing_extra(exc, command_name(args))
        if error is None:
            return _unexpected(exc, level)
        return fail(str(error), EXIT_USAGE)
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - a bug: one line by default, the traceback with -vv
        return _unexpected(exc, level)


def _unexpected(exc: BaseException, level: int) -> int:
    """Report an error nobody anticipated: the traceback at debug level, else one line saying how to see it."""
    from thinkedit.servers.cli.errors import fail
    from thinkedit.tools.errors import one_line

    if level <= logging.DEBUG:
        logging.getLogger(__name__).exception("unexpected error")
        return EXIT_FAILURE
    return fail(f"unexpected {type(exc).__name__}: {one_line(exc)} (run with -vv for the traceback)", EXIT_FAILURE)


if __name__ == "__main__":
    sys.exit(main())
