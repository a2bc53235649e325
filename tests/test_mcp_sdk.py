"""Our one use of the mcp SDK's tool internals, checked against the installed SDK."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, ConfigDict, Field

from thinkedit.servers.mcp.app import TOOL_SPECS
from thinkedit.servers.mcp.sdk import build_tool
from thinkedit.tools.errors import BadInputError


class EchoInput(BaseModel):
    """Echo a word."""

    model_config = ConfigDict(extra="forbid")
    word: str = Field(min_length=1, description="The word.")
    times: int = Field(default=1, ge=1, le=3)


class EchoOutput(BaseModel):
    text: str


async def echo(args: EchoInput, ctx: Any) -> CallToolResult:
    if args.word == "bad":
        raise BadInputError("'bad' is not a word we echo")
    text = " ".join([args.word] * args.times)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content={"text": text})


@dataclass
class Spec:
    name: str = "echo"
    title: str = "Echo"
    fn: Any = echo
    input_model: type[BaseModel] = EchoInput
    output_model: type[BaseModel] = EchoOutput
    description: str = "Echo a word."
    read_only: bool = True
    open_world: bool = False


def test_the_tool_schema_is_the_wire_model_schema() -> None:
    tool = build_tool(Spec())
    assert tool.parameters["properties"] == EchoInput.model_json_schema()["properties"]
    assert tool.parameters["required"] == ["word"]
    assert tool.annotations.read_only_hint is True and tool.title == "Echo"
    for spec in TOOL_SPECS:
        built = build_tool(spec)
        assert built.parameters["properties"].keys() == spec.input_model.model_json_schema()["properties"].keys()


async def test_calls_validate_against_the_model_and_bad_input_is_a_tool_error() -> None:
    server = MCPServer("t", tools=[build_tool(Spec())])
    result = await server.call_tool("echo", {"word": "hi", "times": 2})
    assert "hi hi" in str(result)
    with pytest.raises(ToolError, match="'bad' is not a word"):
        await server.call_tool("echo", {"word": "bad"})
    with pytest.raises(ToolError, match="wrod|extra"):
        await server.call_tool("echo", {"wrod": "hi"})  # a misspelt field is an error, never a default
