"""The command table: each command's name, one-line help and the module that registers it.

``thinkedit --help`` lists the commands from this table alone; only the command a command line
names has its module imported and its options built (``thinkedit.servers.cli.dispatch``), which
also gives each command its one-line help from here, so the listing and a command's own help
cannot drift. Nothing here imports a command's module: the table names them as strings.
Standard library only: this runs before anything else does.
"""

from __future__ import annotations

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
