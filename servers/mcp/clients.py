"""Shape results for the client that asked: MCP-native clients get resource links, model relays do not.

A ``resource_link`` to ``thinkedit://runs/<id>/final.png`` is what an MCP client should show or
read. LangChain's adapters (``langchain-mcp-adapters``, ``langchain.mcp``) instead turn an image
link into an image block with that URL, which their OpenAI and Anthropic converters pass on and
those APIs reject. The adapters identify as the generic client libraries they are built on (the
Python SDK's default ``mcp``; FastMCP's ``fastmcp`` for ``langchain.mcp``), so such a client gets
the result without the link: the preview image (base64, i.e. a ``data:`` URL after conversion),
the summary naming the full-size file and URI, and the structured content. Desktop and IDE
clients name themselves (Claude Desktop, Claude Code, Cursor, VS Code) and keep the link.
"""

from __future__ import annotations

from typing import Literal

from mcp.server.mcpserver import Context

#: ``auto``: decide by client name; ``always``/``never``: the same for every client.
LinkPolicy = Literal["auto", "always", "never"]
#: Default names of generic client libraries, through which agent frameworks relay results to models.
RELAY_NAMES = frozenset({"mcp", "fastmcp"})


def client_name(ctx: Context) -> str | None:
    """Return the name the client gave in ``clientInfo`` (None when it gave none)."""
    params = ctx.session.client_params
    return params.client_info.name if params is not None and params.client_info is not None else None


def wants_resource_links(ctx: Context, policy: LinkPolicy = "auto") -> bool:
    """Say whether this client's results carry resource links (unnamed and relay clients get none)."""
    if policy != "auto":
        return policy == "always"
    name = (client_name(ctx) or "").strip().lower()
    return bool(name) and name not in RELAY_NAMES and "langchain" not in name
