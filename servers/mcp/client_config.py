"""``thinkedit mcp-config``: print the JSON an MCP client needs to start this install's server."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from thinkedit.servers.options import add_allow_root, add_data_dir, add_profile

#: Clients and the top-level key their config files keep servers under.
CLIENT_KEYS = {"claude-desktop": "mcpServers", "claude-code": "mcpServers", "cursor": "mcpServers", "vscode": "servers"}


def server_command() -> tuple[str, list[str], dict[str, str]]:
    """Return (command, leading args, env) that start this install's ``thinkedit``.

    The venv's ``thinkedit`` script when there is one; otherwise this interpreter running the
    installed package as a module.
    """
    interpreter = Path(sys.executable).absolute()
    script = interpreter.parent / "thinkedit"
    if script.is_file() and os.access(script, os.X_OK):
        return str(script), [], {}
    return str(interpreter), ["-m", "thinkedit.servers.cli"], {}


def server_entry(
    profile: str, roots: list[Path], data_dir: Path | None, client: str = "claude-desktop"
) -> dict[str, Any]:
    """Return one server's entry: command, args and env (and a type for clients that want one)."""
    command, lead, env = server_command()
    args = [*lead, "serve", "mcp", "--profile", profile]
    for root in roots:
        args += ["--allow-root", str(root)]
    if data_dir is not None:
        env["THINKEDIT_DATA_DIR"] = str(data_dir)
    entry: dict[str, Any] = {"command": command, "args": args}
    if env:
        entry["env"] = env
    if client in {"claude-code", "vscode"}:
        entry = {"type": "stdio", **entry}
    return entry


def client_config(
    profile: str = "tiny",
    roots: list[Path] | None = None,
    data_dir: Path | None = None,
    client: str = "claude-desktop",
    name: str = "thinkedit",
) -> dict[str, Any]:
    """Return the whole JSON document for ``client``'s MCP config file."""
    return {CLIENT_KEYS[client]: {name: server_entry(profile, roots or [], data_dir, client)}}


def runnable_profile() -> str:
    """Return the first real profile this machine can run now (kontext first), else tiny, saying so on stderr."""
    from thinkedit.tools.catalog import profile_rows
    from thinkedit.tools.profiles import DEMO_NOTE

    rows = sorted(profile_rows(), key=lambda row: row["name"] != "kontext")
    for row in rows:
        if row["ready"] and not row["demo"]:
            print(f"profile {row['name']}: ready on this machine", file=sys.stderr)
            return str(row["name"])
    print(f"no real profile can run on this machine (thinkedit profiles says why), so the config uses tiny. {DEMO_NOTE}",
          file=sys.stderr)
    return "tiny"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the top-level ``mcp-config`` command."""
    p = subparsers.add_parser("mcp-config")
    p.add_argument(
        "--client",
        choices=sorted(CLIENT_KEYS),
        default="claude-desktop",
        help="Config format: mcpServers (Claude Desktop, Claude Code, Cursor) or servers (VS Code).",
    )
    add_profile(p, from_env=False, when_unset="the first real profile this machine can run now, kontext first; "
                "else tiny, the noise-making demo")
    p.add_argument("--name", default="thinkedit", help="Server name in the config (default: thinkedit).")
    add_allow_root(p)
    add_data_dir(p)
    p.set_defaults(handler=cmd_mcp_config)


def cmd_mcp_config(args: argparse.Namespace) -> int:
    """Print the config JSON on stdout (so it can be piped or pasted)."""
    roots = [r.expanduser().resolve() for r in (args.allow_root or [Path.cwd()])]
    data_dir = args.data_dir or (
        Path(os.environ["THINKEDIT_DATA_DIR"]) if os.environ.get("THINKEDIT_DATA_DIR") else None
    )
    data_dir = data_dir.expanduser().resolve() if data_dir else None
    doc = client_config(args.profile or runnable_profile(), roots, data_dir, args.client, args.name)
    print(json.dumps(doc, indent=2))
    return 0
