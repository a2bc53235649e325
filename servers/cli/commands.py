"""The command table: each command's name, one-line help and the module that registers it.

``thinkedit --help`` lists the commands from this table alone; only the command a command line
names has its module imported and its options built (``lazy_commands``). The modules take their
one-line help from here (``summary``), so the listing and a command's own help cannot drift.
Standard library only: this runs before anything else does.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence


class Command:
    """One command: the module whose ``register(subparsers)`` adds it, its one-line help, and, for a
    command with sub-commands of its own (``serve``), their table and the ``dest`` that records which."""

    __slots__ = ("module", "help", "subcommands", "dest")

    def __init__(self, module: str | None, help: str, subcommands: dict[str, Command] | None = None,  # noqa: A002
                 dest: str | None = None) -> None:
        self.module, self.help, self.subcommands, self.dest = module, help, subcommands, dest


#: ``thinkedit serve`` sub-commands: each server's package registers its own.
SERVERS: dict[str, Command] = {
    "editor": Command("thinkedit.servers.editor.cli", "Serve an editing model over the OpenAI Images edits API."),
    "thinker": Command("thinkedit.servers.thinker.cli",
                       "Serve the thinker model over an OpenAI-compatible chat API (vLLM, or --local)."),
    "mcp": Command("thinkedit.servers.mcp.cli", "Serve think_while_edit and friends to MCP clients (stdio or HTTP)."),
}

#: Top-level commands, in the order ``--help`` lists them.
COMMANDS: dict[str, Command] = {
    "edit": Command("thinkedit.servers.cli.run_commands", "Edit an image with the Think-while-Edit loop."),
    "resume": Command("thinkedit.servers.cli.run_commands", "Finish an interrupted run from its checkpoint."),
    "runs": Command("thinkedit.servers.cli.run_commands", "List runs and their status."),
    "profiles": Command("thinkedit.servers.cli.profile_commands",
                        "List the profiles: editor, thinker, key variables, ready or not."),
    "serve": Command(None, "Run a server: editor, thinker or mcp.", SERVERS, dest="server"),
    "eval": Command("thinkedit.servers.cli.eval_commands",
                    "Run a benchmark with and without the loop and judge both (VIEScore-style)."),
    "data": Command("thinkedit.servers.cli.data_commands",
                    "Build training data from recorded runs; write a synthetic benchmark."),
    "models": Command("thinkedit.servers.cli.models_command",
                      "List the known editors and thinkers: defaults, accepted settings and working size."),
    "mcp-config": Command("thinkedit.servers.mcp.client_config",
                          "Print the MCP client config (Claude Desktop, Claude Code, Cursor, VS Code) for this install."),
    "ui": Command("thinkedit.servers.ui.cli", "Browse, follow, start and review runs in a local web gallery."),
}

#: Flags a parser level takes before its sub-command word; none of them takes a value.
FLAGS_WITHOUT_VALUE = {"-h", "--help", "--version", "-v", "--verbose"}


def summary(name: str, table: dict[str, Command] = COMMANDS) -> str:
    """Return the one-line help of command ``name`` (for its module's ``add_parser``)."""
    return table[name].help


def named_command(tokens: Sequence[str], table: dict[str, Command]) -> str | None:
    """Return the sub-command ``tokens`` name at this level (the first word that is not a flag), if it is one.

    Only value-less flags may come before the sub-command (``-v``, ``-vv``, ``--version``, ``--help``),
    so the first word that does not start with ``-`` is the sub-command or a typo.
    """
    for token in tokens:
        if token == "--":
            return None
        if token.startswith("-"):
            if token in FLAGS_WITHOUT_VALUE or token.startswith("-v") and set(token[1:]) == {"v"}:
                continue
            return None  # an unknown flag: argparse will say so
        return token if token in table else None
    return None


def lazy_commands(subparsers: argparse._SubParsersAction, table: dict[str, Command],
                  tokens: Sequence[str] | None) -> None:
    """Register ``table``'s commands on ``subparsers``, building only the one the command line names.

    With ``tokens`` None every module registers (the full parser, for tests and docs). Otherwise only
    the named command's module is imported and registers; every other command gets a placeholder with
    its one-line help, which is all ``--help`` shows of it and which is never parsed (it is not the
    command). Commands with sub-commands of their own (``serve``) recurse with the tokens after them.
    """
    if tokens is None:
        for name in table:
            if name not in subparsers.choices:  # a module may register several commands at once
                _build(subparsers, name, table[name], None)
        return
    wanted = named_command(tokens, table)
    if wanted is not None:
        items = list(tokens)
        _build(subparsers, wanted, table[wanted], items[items.index(wanted) + 1:])
    for name, command in table.items():
        if name not in subparsers.choices:
            subparsers.add_parser(name, help=command.help)


def _build(subparsers: argparse._SubParsersAction, name: str, command: Command, rest: list[str] | None) -> None:
    """Build command ``name`` in full: its module registers it, or its sub-commands are laid out the same way."""
    if command.subcommands is None:
        importlib.import_module(command.module).register(subparsers)
        return
    parser = subparsers.add_parser(name, help=command.help)
    inner = parser.add_subparsers(dest=command.dest, required=True, metavar=(command.dest or "command").upper())
    lazy_commands(inner, command.subcommands, rest)
