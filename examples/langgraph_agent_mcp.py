"""Give a LangGraph agent the thinkedit tools over MCP (stdio), and let it edit a picture.

    python examples/langgraph_agent_mcp.py examples/chelsea.png "put a red party hat on the cat" \
        --model openai:gpt-4.1-mini

The agent is LangChain's ``create_agent`` (a LangGraph graph); the tools come from
``langchain.mcp.MCPAdapter`` (``pip install 'langchain[mcp]'``, which works beside mcp 2.x), which
starts ``thinkedit serve mcp`` as a subprocess. The model needs its provider's package and API key;
the server's own editor and thinker come from ``--profile`` (default ``tiny``: offline noise).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from langchain_core._api import LangChainBetaWarning
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool

warnings.filterwarnings("ignore", category=LangChainBetaWarning)
# Run from a source checkout without installing: make the ``servers`` package importable.
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

SYSTEM_PROMPT = (
    "You edit images for the user with the think_while_edit tool. Pass the image path and the user's "
    "instruction; the tool keeps refining until the edit is right. Report the scores and the file path."
)


def server_transport(profile: str, roots: list[Path], data_dir: Path | None = None) -> Any:
    """Return a stdio transport that starts this install's MCP server, as ``thinkedit mcp-config`` would."""
    from fastmcp.client.transports import StdioTransport

    from thinkedit.servers.mcp.client_config import server_entry

    entry = server_entry(profile, roots, data_dir)
    return StdioTransport(command=entry["command"], args=entry["args"], env=entry.get("env"), keep_alive=False)


def build_agent(model: BaseChatModel, tools: list[BaseTool]) -> Any:
    """Return a LangGraph agent that may call the MCP tools."""
    from langchain.agents import create_agent

    return create_agent(model, tools, system_prompt=SYSTEM_PROMPT)


async def edit_with_agent(model: BaseChatModel, image: Path, instruction: str, transport: Any) -> dict[str, Any]:
    """Ask the agent to edit ``image``; return its messages and the tool's structured results."""
    from langchain.mcp import MCPAdapter

    async with MCPAdapter(transport) as adapter:
        tools = await adapter.list_tools()
        agent = build_agent(model, tools)
        state = await agent.ainvoke({"messages": [{"role": "user", "content": f"Edit {image}: {instruction}"}]})
    results = [
        m.artifact["structured_content"]
        for m in state["messages"]
        if isinstance(m, ToolMessage) and isinstance(m.artifact, dict) and "structured_content" in m.artifact
    ]
    return {"messages": state["messages"], "results": results}


def main() -> None:
    """Run the agent on one image from the command line."""
    from langchain.chat_models import init_chat_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("instruction")
    parser.add_argument("--model", required=True, help="A chat model for init_chat_model, e.g. openai:gpt-4.1-mini.")
    parser.add_argument("--profile", default="tiny", help="The MCP server's editor + thinker profile.")
    args = parser.parse_args()
    image = args.image.resolve()
    transport = server_transport(args.profile, [image.parent])
    out = asyncio.run(edit_with_agent(init_chat_model(args.model), image, args.instruction, transport))
    print(out["messages"][-1].content)
    for result in out["results"]:
        print(json.dumps({k: result[k] for k in ("run_id", "status", "stop_reason", "best_round")}, indent=2))
        if result.get("final_image"):
            print("full-size image:", result["final_image"]["path"])


if __name__ == "__main__":
    main()
