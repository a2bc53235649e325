"""Options more than one command takes are declared once (servers/options.py) and mean the same everywhere."""

from __future__ import annotations

import argparse
import ast
from collections import defaultdict
from pathlib import Path

from thinkedit.servers.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]

#: Options several commands share, and where each is declared.
SHARED = {flag: "servers/options.py" for flag in (
    "--data-dir", "--checkpoints", "--artifacts", "--profile", "--editor", "--editor-model", "--thinker",
    "--thinker-model", "--host", "--port", "--token", "--allow-root", "--max-rounds", "--record")}
SHARED |= {"--verbose": "servers/cli/__init__.py", "--version": "servers/cli/__init__.py"}


def declarations() -> dict[str, list[str]]:
    """Map each option string to the files whose ``add_argument`` calls name it, once per call."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in [*(ROOT / "servers").rglob("*.py"), *(ROOT / "apps").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("-"):
                        found[arg.value].append(str(path.relative_to(ROOT)))
    return found


def test_each_shared_option_is_declared_once_where_the_shared_options_live() -> None:
    found = declarations()
    assert {flag: found[flag] for flag in SHARED} == {flag: [where] for flag, where in SHARED.items()}


def parsers(parser: argparse.ArgumentParser, path: str = "thinkedit") -> dict[str, argparse.ArgumentParser]:
    """Return every parser of the command line by its command path."""
    out = {path: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out |= parsers(sub, f"{path} {name}")
    return out


def test_a_shared_option_means_the_same_in_every_command() -> None:
    seen: dict[str, dict[tuple, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path, parser in parsers(build_parser()).items():
        for action in parser._actions:
            for flag in set(action.option_strings) & set(SHARED):
                if path == "thinkedit":
                    continue  # the top level's -v counts apart from a command's (see add_global_flags)
                if (flag, path) == ("--profile", "thinkedit mcp-config"):
                    continue  # its default is the first real profile this machine can run (tests/test_readiness.py)
                # Each server has its own port, and the MCP server its own token variable.
                own = flag in ("--port", "--token")
                kind = getattr(action.type, "__qualname__", action.type)
                seen[flag][(None if own else action.help, kind, action.metavar, None if own else action.default,
                            type(action))].append(path)
    assert len(seen["--data-dir"][next(iter(seen["--data-dir"]))]) >= 6  # edit, resume, runs, eval, serve mcp, ui, ...
    assert {flag: len(kinds) for flag, kinds in seen.items()} == {flag: 1 for flag in seen}, dict(seen)
