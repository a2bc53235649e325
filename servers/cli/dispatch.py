"""Build the parser lazily from the command table: only the named command's module is imported, by name.

Imports point one way: the CLI imports each command's module (by the name the table gives, when a
command line asks for it), and the modules import nothing of the CLI; their one-line help comes
from the table through ``add_parser`` here.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from typing import Any

from thinkedit.servers.cli.commands import Command, named_command


class TableHelp:
    """Hand a command's module the sub-parsers, each command it adds given its one-line help from the table."""

    def __init__(self, subparsers: argparse._SubParsersAction, table: dict[str, Command]) -> None:
        self.subparsers, self.table = subparsers, table

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        """Add command ``name`` (its help from the table unless the module gives one)."""
        kwargs.setdefault("help", self.table[name].help)
        return self.subparsers.add_parser(name, **kwargs)


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
                _build(subparsers, name, table, None)
        return
    wanted = named_command(tokens, table)
    if wanted is not None:
        items = list(tokens)
        _build(subparsers, wanted, table, items[items.index(wanted) + 1:])
    for name, command in table.items():
        if name not in subparsers.choices:
            subparsers.add_parser(name, help=command.help)


def _build(subparsers: argparse._SubParsersAction, name: str, table: dict[str, Command], rest: list[str] | None) -> None:
    """Build command ``name`` in full: its module registers it, or its sub-commands are laid out the same way."""
    command = table[name]
    if command.subcommands is None:
        importlib.import_module(command.module).register(TableHelp(subparsers, table))
        return
    parser = subparsers.add_parser(name, help=command.help)
    inner = parser.add_subparsers(dest=command.dest, required=True, metavar=(command.dest or "command").upper())
    lazy_commands(inner, command.subcommands, rest)
