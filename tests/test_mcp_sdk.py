"""Our one use of the mcp SDK's tool internals, checked against the installed SDK."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, ConfigDict, Field, field_validator

from thinkedit.servers.mcp.server import TOOL_SPECS, ToolSpec, build_tool, dispatch
from thinkedit.tools.errors import BadInputError


class EchoInput(BaseModel):
    """Echo a word."""

    model_config = ConfigDict(extra="forbid")
    word: str = Field(min_length=1, description="The word.")
    times: int = Field(default=1, ge=1, le=3)

    @field_validator("word")
    @classmethod
    def count(cls, word: str) -> str:
        VALIDATED.append(word)
        return word


#: Each word EchoInput validated, in order.
VALIDATED: list[str] = []


class EchoOutput(BaseModel):
    text: str


async def echo(args: EchoInput, ctx: Any) -> CallToolResult:
    assert isinstance(args, EchoInput)
    if args.word == "bad":
        raise BadInputError("'bad' is not a word we echo")
    text = " ".join([args.word] * args.times)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content={"text": text})


SPEC = ToolSpec("echo", "Echo", EchoInput, EchoOutput, "Echo a word.", read_only=True)


def test_the_tool_schema_is_the_wire_model_schema() -> None:
    tool = build_tool(SPEC, echo)
    assert tool.parameters["properties"] == EchoInput.model_json_schema()["properties"]
    assert tool.parameters["required"] == ["word"]
    assert tool.annotations.read_only_hint is True and tool.title == "Echo"
    for spec in TOOL_SPECS:
        built = build_tool(spec, dispatch(spec))
        assert built.parameters["properties"].keys() == spec.input_model.model_json_schema()["properties"].keys()


async def test_calls_validate_against_the_model_and_bad_input_is_a_tool_error() -> None:
    server = MCPServer("t", tools=[build_tool(SPEC, echo)])
    result = await server.call_tool("echo", {"word": "hi", "times": 2})
    assert "hi hi" in str(result)
    with pytest.raises(ToolError, match="'bad' is not a word"):
        await server.call_tool("echo", {"word": "bad"})
    with pytest.raises(ToolError, match="wrod|extra"):
        await server.call_tool("echo", {"wrod": "hi"})  # a misspelt field is an error, never a default


async def test_the_arguments_are_validated_once_and_the_handler_gets_the_model() -> None:
    server = MCPServer("t", tools=[build_tool(SPEC, echo)])
    VALIDATED.clear()
    result = await server.call_tool("echo", {"word": "once", "times": 2})
    assert "once once" in str(result)
    assert VALIDATED == ["once"]  # by the SDK, into the input model the handler receives: never again
