"""``thinkedit models``: every known editor and thinker, with defaults, settings and working size."""

from __future__ import annotations

import argparse
import json
import sys



def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``models``."""
    parser = subparsers.add_parser("models")
    parser.add_argument("--json", action="store_true", help="Print JSON (for scripts).")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the catalogue as text or JSON."""
    from thinkedit.tools.catalog import catalog

    data = catalog()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print("Editors (backend 'diffusers'; any of them behind an OpenAI Images server with 'openai-images'):\n")
    for e in data["editors"]:
        where = "built locally (random weights)" if e["local"] else e["hub_id"]
        print(f"  {e['name']}  ({e['pipeline']}, {where})")
        if e["profiles"]:
            print(f"    profiles:     {', '.join(e['profiles'])}")
        print(f"    defaults:     {_pairs(e['defaults'])}")
        print(f"    settings:     {', '.join(_setting(n, s) for n, s in e['settings'].items())}")
        area = f"{e['working_area']} px ({e['working_area'] / 1e6:.2f} MP)" if e["working_area"] else "the input's"
        example = e["working_size_for_4000x3000"]
        shown = f"; a 4000x3000 photo is edited at {example[0]}x{example[1]}" if example else ""
        print(f"    working size: {area}: {e['working_size']}{shown}")
        print(f"    here:         {e['here']}")
        print()
    print("Thinkers (as the packaged profiles configure them):\n")
    for t in data["thinkers"]:
        print(f"  {t['name']}  (backend {', '.join(t['backends'])}; protocol {t['protocol']})")
        print(f"    profiles:     {', '.join(t['profiles'])}")
        print(f"    defaults:     {_pairs(t['defaults'])}")
        print(f"    settings:     {', '.join(t['settings'])}")
        print(f"    working size: {t['working_area']}")
        if t["here"]:
            print(f"    here:         {t['here']}")
        print()
    print("Override per profile: [editor] working_area / max_side / [editor.settings]; [thinker] fields.",
          file=sys.stdout)
    return 0


def _pairs(values: dict[str, object]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items() if v is not None) or "-"


def _setting(name: str, spec: dict[str, object]) -> str:
    if spec["min"] is None and spec["max"] is None:
        return f"{name} ({spec['type']})"
    return f"{name} ({spec['type']} {spec['min']:g}-{spec['max']:g})"
