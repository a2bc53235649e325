"""Relay thinkedit tool results the way a LangChain agent does, and print the provider requests' images.

Run as a script (tests only) in an environment with a LangChain MCP adapter, langchain-openai and
langchain-anthropic: ``python langchain_relay.py ADAPTER URL IMAGE``, ADAPTER being ``adapters``
(``langchain-mcp-adapters``, on mcp 1.x) or ``langchain.mcp`` (on mcp 2.x). It calls
think_while_edit and edit_image over streamable HTTP, puts each ToolMessage after the AIMessage
that asked for it, formats the conversation with langchain-openai's and langchain-anthropic's own
converters (what they would send to the API, offline), and prints every image URL and text found.
"""

from __future__ import annotations

import asyncio
import json
import sys
import warnings
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage


async def tools_of(adapter: str, url: str) -> tuple[Any, dict[str, Any]]:
    """Open the adapter's connection and return (a context to close, its tools by name)."""
    if adapter == "adapters":
        from langchain_mcp_adapters.client import MultiServerMCPClient

        client = MultiServerMCPClient({"thinkedit": {"url": url, "transport": "streamable_http"}})
        return None, {t.name: t for t in await client.get_tools()}
    warnings.simplefilter("ignore")
    from langchain.mcp import MCPAdapter

    context = MCPAdapter(url)
    opened = await context.__aenter__()
    return context, {t.name: t for t in await opened.list_tools()}


def walk(value: Any, found: dict[str, list[str]]) -> None:
    """Collect image URLs (OpenAI image_url parts, Anthropic image sources; 80 characters) and texts."""
    if isinstance(value, dict):
        if value.get("type") == "image_url":
            found["images"].append(value["image_url"]["url"][:80])
        elif value.get("type") in {"image", "document"} and isinstance(value.get("source"), dict):
            source = value["source"]
            found["images"].append(
                source["url"][:80] if source.get("type") == "url" else f"data:{source.get('media_type')};base64,..."
            )
        elif value.get("type") == "text":
            found["texts"].append(value["text"])
        for item in value.values():
            walk(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            walk(item, found)


async def main(adapter: str, url: str, image: str) -> None:
    from langchain_anthropic.chat_models import _format_messages
    from langchain_openai.chat_models.base import _convert_message_to_dict

    context, tools = await tools_of(adapter, url)
    calls = {
        "think_while_edit": {"image": image, "instruction": "put a hat on the cat", "wait_seconds": 60},
        "edit_image": {"image": image, "instruction": "make it blue"},
    }
    report: dict[str, Any] = {}
    try:
        for n, (name, args) in enumerate(calls.items()):
            call = {"name": name, "args": args, "id": f"call_{n}", "type": "tool_call"}
            message = await tools[name].ainvoke(call)
            assert isinstance(message, ToolMessage), type(message)
            conversation = [HumanMessage("edit my photo"), AIMessage(content="", tool_calls=[call]), message]
            openai_request = [_convert_message_to_dict(m) for m in conversation]
            _, anthropic_request = _format_messages(conversation, model="claude-sonnet-4-5")
            for provider, request in {"openai": openai_request, "anthropic": anthropic_request}.items():
                found: dict[str, list[str]] = {"images": [], "texts": []}
                walk(request, found)
                report[f"{name}/{provider}"] = found
    finally:
        if context is not None:
            await context.__aexit__(None, None, None)
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
