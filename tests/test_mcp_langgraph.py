"""A LangGraph agent consumes think_while_edit through LangChain's MCP adapter over stdio."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from tests.mcp_support import CHELSEA, ROOT


class ScriptedChatModel(BaseChatModel):
    """Decide to call think_while_edit on the first turn, then answer with what the tool returned (test double)."""

    image: str
    seen: list[list[BaseMessage]] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.seen.append(list(messages))
        tool_messages = [m for m in messages if isinstance(m, ToolMessage)]
        if not tool_messages:
            call = {
                "name": "think_while_edit",
                "id": "call-1",
                "args": {"image": self.image, "instruction": "put a red party hat on the cat", "max_rounds": 1},
            }
            reply = AIMessage(content="", tool_calls=[call])
        else:
            reply = AIMessage(content=f"The tool answered: {tool_messages[-1].text[:80]}")
        return ChatResult(generations=[ChatGeneration(message=reply)])


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("langgraph_agent_mcp", ROOT / "examples" / "langgraph_agent_mcp.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["langgraph_agent_mcp"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
async def test_agent_calls_the_tool_and_gets_the_image_and_trajectory(mcp_data_dir: Path) -> None:
    example = load_example()
    model = ScriptedChatModel(image=str(CHELSEA))
    transport = example.server_transport("tiny", [ROOT], data_dir=mcp_data_dir)
    out = await example.edit_with_agent(model, CHELSEA, "put a red party hat on the cat", transport)

    (tool_message,) = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert tool_message.status != "error", tool_message.content
    kinds = [block["type"] for block in tool_message.content]
    assert "image" in kinds and "text" in kinds
    (result,) = out["results"]
    assert result["status"] == "done" and len(result["rounds"]) == 1
    assert Path(result["final_image"]["path"]).is_file()
    # The model saw the tool's answer on its second turn, and the agent ended with its reply.
    assert any(isinstance(m, ToolMessage) for m in model.seen[-1])
    assert out["messages"][-1].content.startswith("The tool answered")
