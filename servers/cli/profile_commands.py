"""``thinkedit profiles``: which profiles this machine can run now, and what each one lacks (a key, a GPU, ...)."""

from __future__ import annotations

import argparse
import json

from thinkedit.tools.catalog import profile_rows


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``profiles``."""
    p = subparsers.add_parser("profiles")
    p.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
    p.set_defaults(handler=cmd_profiles)


def cmd_profiles(args: argparse.Namespace) -> int:
    """Print the profiles table (or JSON)."""
    rows = profile_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [("PROFILE", "EDITOR", "THINKER", "ON THIS MACHINE")]
    for row in rows:
        if "error" in row:
            table.append((str(row["name"]), "invalid", str(row["error"]), ""))
            continue
        missing, keys = row["missing"], row["keys"]
        if row["not_ready"] or missing:
            lacks = [*(f"missing ${k}" for k in missing), *row["not_ready"]]  # type: ignore[misc]
            status = "not ready: " + "; ".join(lacks)
        else:
            status = "ready (" + ", ".join(f"${k}" for k in keys) + " set)" if keys else "ready (no key needed)"  # type: ignore[union-attr]
            status += " · demo: noise pictures, meaningless scores" if row["demo"] else ""
        table.append((str(row["name"]), str(row["editor"]), str(row["thinker"]), status))
    widths = [max(len(r[i]) for r in table) + 2 for i in range(3)]
    for r in table:
        print("".join(cell.ljust(width) for cell, width in zip(r, widths)) + r[3])
    print("\nAny profile takes another thinker: --thinker-model anthropic:<model> (ANTHROPIC_API_KEY), "
          "google_genai:<model> (GOOGLE_API_KEY) or openai:<model> (OPENAI_API_KEY).")
    return 0
