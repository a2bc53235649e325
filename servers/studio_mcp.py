"""The ``/mcp`` endpoint of ``langgraph dev`` / LangGraph Server: the graph as an MCP tool that answers JSON.

langgraph-api serves each assistant as a tool at ``/mcp`` but writes a run's output as a Python
repr, which no client can parse. ``langgraph.json`` (``http.app``) puts this endpoint in front of
it: the same tool, named, described and typed by the assistant (the description in
``langgraph.json``, the graph's input and output schemas), run on the server as the built-in one
runs it, and its output returned as JSON text and as structured content. Without the ``mcp`` extra
the app has no routes and the server's own ``/mcp`` answers.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.applications import Starlette

log = logging.getLogger(__name__)

#: The graph id in ``langgraph.json`` that the tool runs.
GRAPH = "think_while_edit"


async def _assistant(client: Any) -> dict[str, Any]:
    """Return the graph's own assistant, the one the server creates from ``langgraph.json`` (``created_by: system``).

    Not merely the graph's newest assistant: one a user makes in Studio (another name, review on) would
    otherwise become the tool every client of ``/mcp`` gets.
    """
    found = await client.assistants.search(graph_id=GRAPH, metadata={"created_by": "system"}, limit=1)
    if not found:
        raise LookupError(f"the server has no assistant for graph {GRAPH!r}")
    return found[0]


def build_app() -> Starlette:
    """Return the Starlette app that serves the tool at ``/mcp`` (an empty app without the mcp SDK)."""
    try:
        from langgraph_sdk import get_client
        from mcp import types
        from mcp.server.lowlevel import Server
        from mcp.server.transport_security import TransportSecuritySettings
    except ImportError as exc:
        log.warning("thinkedit's /mcp needs the mcp extra (%s); the server's own /mcp answers instead", exc)
        return Starlette()

    async def list_tools(_ctx: Any, _params: Any) -> types.ListToolsResult:
        client = get_client(url=None)  # the server itself, in process
        assistant = await _assistant(client)
        schemas = await client.assistants.get_schemas(assistant["assistant_id"])
        tool = types.Tool(
            name=GRAPH,
            title=assistant.get("name") or GRAPH,
            description=assistant.get("description") or "",
            input_schema={"type": "object", **(schemas.get("input_schema") or {})},
            output_schema={"type": "object", **(schemas.get("output_schema") or {})},
        )
        return types.ListToolsResult(tools=[tool])

    async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name != GRAPH:
            return _error(f"unknown tool {params.name!r}; this server has {GRAPH!r}")
        client = get_client(url=None)
        assistant = await _assistant(client)
        output = await client.runs.wait(None, assistant["assistant_id"], input=params.arguments or {},
                                        raise_error=False)
        if isinstance(output, dict) and "__error__" in output:
            error = output["__error__"]
            return _error(f"{error.get('error')}: {error.get('message')}" if isinstance(error, dict) else str(error))
        if isinstance(output, dict) and output.get("__interrupt__"):  # paused in a thread this call does not keep
            return _error("the run paused for review, which a call to this server's /mcp cannot answer (it keeps "
                          "no thread): run it without review, or through thinkedit's own MCP server (review_run)")
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(output))], structured_content=output
        )

    def _error(message: str) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)

    server = Server("thinkedit-langgraph", on_list_tools=list_tools, on_call_tool=call_tool)
    # Stateless JSON, as the server's own /mcp; Host checks are the server's business, as for its other routes.
    return server.streamable_http_app(
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )


app = build_app()
