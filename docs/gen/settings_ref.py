"""Write the table of loop settings from ``LoopSettings``' own fields (defaults, bounds, descriptions)."""

from __future__ import annotations

import json
from typing import Any

from md import cell

#: The placeholder a page holds where the table goes.
MARKER = "<!-- generated: loop-settings -->"



def _type(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    bounds = [f"{k} {prop[k]}" for k in ("minimum", "maximum") if k in prop]
    return prop.get("type", "object") + (f" ({', '.join(bounds)})" if bounds else "")


def markdown() -> str:
    """Return the table: one row per ``LoopSettings`` field."""
    from thinkedit.agent.settings import LoopSettings

    schema = LoopSettings.model_json_schema()
    defs = schema.get("$defs", {})
    rows = ["| setting | type | default | what it does |", "|---|---|---|---|"]
    for name, prop in schema["properties"].items():
        if "$ref" in prop and "enum" in defs.get(prop["$ref"].rsplit("/", 1)[-1], {}):
            prop = {**defs[prop["$ref"].rsplit("/", 1)[-1]], **prop}
        field = LoopSettings.model_fields[name]
        default = "" if field.is_required() or field.default_factory else f"`{json.dumps(field.default, default=str)}`"
        rows.append(f"| `{name}` | {_type(prop)} | {default} | {cell(prop.get('description', field.description or ''))} |")
    return "\n".join(rows)
