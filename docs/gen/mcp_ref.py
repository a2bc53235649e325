"""Write the MCP tool reference from what the real server lists.

The server is built as ``thinkedit serve mcp`` builds it (``build_server``, the tiny profile, no
lifespan: nothing is loaded) and asked for its tools; each tool's inputs and outputs are its JSON
schemas, which the server derives from the pydantic models in ``servers/mcp/schemas.py``.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from md import cell


def listed_tools() -> list[dict[str, Any]]:
    """Return the tools the server lists (``tools/list``), as JSON dicts with the wire's field names."""
    from thinkedit.servers.mcp.server import build_server
    from thinkedit.servers.mcp.lifespan import ServerConfig

    with tempfile.TemporaryDirectory() as data_dir:
        server = build_server(ServerConfig(profile="tiny", data_dir=Path(data_dir)))
        tools = asyncio.run(server.list_tools())
    return [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools]



def _type(schema: dict[str, Any]) -> str:
    """Say a JSON schema's type in a few words (``$ref`` names link to their section below)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        return f"map of {_type(schema['additionalProperties'])}"
    bounds = [f"{k} {schema[k]}" for k in ("minimum", "maximum", "exclusiveMinimum", "maxLength", "maxItems")
              if k in schema]
    return f"{kind}" + (f" ({', '.join(bounds)})" if bounds else "")


def _fields(schema: dict[str, Any]) -> list[str]:
    props = schema.get("properties", {})
    if not props:
        return ["(no fields)", ""]
    required = set(schema.get("required", []))
    rows = ["| field | type | required | default | what it is |", "|---|---|---|---|---|"]
    for name, prop in props.items():
        default = f"`{json.dumps(prop['default'])}`" if "default" in prop else ""
        rows.append(f"| `{name}` | {_type(prop)} | {'yes' if name in required else ''} | {cell(default)} "
                    f"| {cell(prop.get('description', ''))} |")
    return [*rows, ""]


def _hints(tool: dict[str, Any]) -> str:
    notes = tool.get("annotations") or {}
    said = [word for key, word in (("readOnlyHint", "read-only"), ("idempotentHint", "idempotent"),
                                   ("destructiveHint", "destructive")) if notes.get(key)]
    app = (tool.get("_meta") or {}).get("ui", {}).get("resourceUri")
    if app:
        said.append(f"drawn by the MCP App `{app}` in clients with Apps")
    return ", ".join(said)


def markdown() -> str:
    """Return the whole MCP tool reference page."""
    tools = listed_tools()
    lines = [
        "# MCP tool reference",
        "",
        "Generated when the site is built (`docs/gen/mcp_ref.py`) from the tools the real server lists "
        "(`thinkedit serve mcp`'s `tools/list`); their schemas come from the pydantic models in "
        "`servers/mcp/schemas.py`, which reject unknown fields. How to connect a client and what the results "
        "hold: [MCP clients](../mcp.md).",
        "",
        "| tool | title |",
        "|---|---|",
        *[f"| [`{t['name']}`](#{t['name'].replace('_', '-').lower()}) | {cell(t.get('title', ''))} |" for t in tools],
        "",
    ]
    defs: dict[str, dict[str, Any]] = {}
    for tool in tools:
        lines += [f"## `{tool['name']}` {{ #{tool['name'].replace('_', '-').lower()} }}", "",
                  cell(tool.get("description", "")), ""]
        if hints := _hints(tool):
            lines += [f"*Hints:* {hints}.", ""]
        for label, key in (("Input", "inputSchema"), ("Output (structured content)", "outputSchema")):
            schema = tool.get(key) or {}
            defs.update(schema.get("$defs", {}))
            lines += [f"**{label}**", "", *_fields(schema)]
    if defs:
        lines += ["## Types", "", "Objects the inputs and outputs above nest.", ""]
        for name in sorted(defs):
            schema = defs[name]
            lines += [f"### {name} {{ #{name.lower()} }}", ""]
            if schema.get("description"):
                lines += [cell(schema["description"]), ""]
            if "enum" in schema:
                lines += [f"One of {_type(schema)}.", ""]
            else:
                lines += _fields(schema)
    return "\n".join(lines)
