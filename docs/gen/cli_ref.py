"""Write the command-line reference from ``thinkedit``'s own argparse parsers.

The parser is built in full (``build_parser(None)``: every command's options), then walked: one
section per command and sub-command, its usage as argparse prints it, and one row per option.
Building it imports only the command modules, which keep their heavy imports inside their handlers.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

from md import cell

#: argparse wraps usage lines at the terminal's width: fix it, so the page does not depend on who builds it.
WIDTH = "100"


def full_parser() -> argparse.ArgumentParser:
    """Return the real ``thinkedit`` parser with every command's options."""
    from thinkedit.servers.cli import build_parser

    return build_parser(None)


def walk(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """Yield ``(command words, parser, one-line help)`` for every command below ``parser``, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*words, name), sub, helps.get(name, "")
                yield from walk(sub, (*words, name))


def commands() -> list[str]:
    """Return every command as typed, e.g. ``thinkedit serve editor``."""
    return [" ".join(("thinkedit", *words)) for words, _, _ in walk(full_parser())]



def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """Return an option's help with argparse's ``%(default)s`` placeholders filled in."""
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    try:
        return parser._get_formatter()._expand_help(action)
    except (KeyError, TypeError, ValueError):
        return action.help


def _names(action: argparse.Action) -> str:
    if action.option_strings:
        names = ", ".join(f"`{o}`" for o in action.option_strings)
        if action.nargs != 0:
            metavar = action.metavar or (f"{{{','.join(map(str, action.choices))}}}" if action.choices else action.dest.upper())
            names += f" `{metavar if isinstance(metavar, str) else ' '.join(metavar)}`"
        return names
    return f"`{action.metavar or action.dest}`"


def _default(action: argparse.Action) -> str:
    if action.option_strings and action.nargs != 0 and action.default not in (None, argparse.SUPPRESS, [], ""):
        return f"`{action.default}`"
    return ""


def _options(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        rows.append(f"| {_names(action)} | {cell(_help(parser, action))} | {_default(action)} |")
    if not rows:
        return []
    return ["| argument | what it does | default |", "|---|---|---|", *rows, ""]


def markdown() -> str:
    """Return the whole CLI reference page."""
    os.environ["COLUMNS"] = WIDTH
    top = full_parser()
    lines = [
        "# Command-line reference",
        "",
        "Generated from `thinkedit`'s argparse parsers when the site is built (`docs/gen/cli_ref.py`): "
        "what `thinkedit COMMAND --help` prints, for every command. "
        "`-v`/`-vv` and `--version` are taken before or after any command.",
        "",
        "```text",
        top.format_usage().strip(),
        "```",
        "",
    ]
    lines += _options(top)
    for words, parser, summary in walk(top):
        lines += [f"## `thinkedit {' '.join(words)}`", "", cell(summary or parser.description or ""), ""]
        if parser.description and parser.description != summary:
            lines += [parser.description.strip(), ""]
        lines += ["```text", parser.format_usage().strip(), "```", ""]
        lines += _options(parser)
        if parser.epilog:
            lines += [parser.epilog.strip(), ""]
    return "\n".join(lines)
