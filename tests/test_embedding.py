"""The loop inside larger workflows: as a subgraph node and as a LangChain tool."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import pytest
from PIL import Image
from langgraph.graph import END, START, StateGraph

from thinkedit.agent.checkpoint import memory_checkpointer
from thinkedit.agent.graph import build_graph, default_retry
from thinkedit.agent.langchain_tool import make_tool
from thinkedit.agent.settings import artifact_uri
from tests.conftest import EXAMPLES
from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts
from tests.test_graph import make_settings
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.types import ImageRef


def fake_graph(thinker: ScriptedThinker, editor: ScriptedEditor | None = None, **kwargs):
    return build_graph(
        FakeBackends(editor or ScriptedEditor(), thinker),
        retry=default_retry(initial_interval=0.01),
        **kwargs,
    )


class Parent(TypedDict, total=False):
    image: str
    instruction: str
    final_image: dict  # JSON-native, as the loop's channels hold it
    stop_reason: str
    summary: str


def parent_graph(loop, context_schema=None):
    def report(state: Parent) -> Parent:
        return {"summary": f"{state['stop_reason']}: {state['final_image']['sha256'][:8]}"}

    return (
        StateGraph(Parent, context_schema=context_schema)
        .add_node("loop", loop)
        .add_node("report", report)
        .add_edge(START, "loop")
        .add_edge("loop", "report")
        .add_edge("report", END)
        .compile(checkpointer=memory_checkpointer())
    )


@dataclass
class ParentContext:
    """A parent application's own context: some of its fields are ours, the others its own."""

    user_id: str
    max_rounds: int
    data_dir: str


@pytest.mark.parametrize("shape", ["dict", "dict-with-parent-keys", "dataclass", "none"])
async def test_loop_as_a_subgraph_takes_any_context_shape(data_dir: Path, shape: str) -> None:
    editor = ScriptedEditor()
    loop = fake_graph(ScriptedThinker(verdicts((3, 3, "a red hat"), (4, 4, "a tall red hat"), (5, 5, "a tall red party hat"))), editor)
    settings = make_settings(data_dir, max_rounds=2).model_dump()
    context = {
        "dict": settings,
        "dict-with-parent-keys": {**settings, "user_id": "u-1", "tenant": "acme"},
        "dataclass": ParentContext(user_id="u-1", max_rounds=2, data_dir=str(data_dir)),
        "none": None,
    }[shape]
    parent = parent_graph(loop, context_schema=type(context) if shape == "dataclass" else None)
    out = await parent.ainvoke(
        {"image": str(EXAMPLES / "chelsea.png"), "instruction": "add a hat"},
        {"configurable": {"thread_id": f"parent-{shape}"}},
        context=context,
    )
    # Without a context the profile's defaults apply (tiny: 3 rounds); each shape's max_rounds otherwise.
    rounds = 3 if shape == "none" else 2
    assert out["stop_reason"] == "max_rounds" and len(editor.calls) == rounds
    assert out["summary"].startswith("max_rounds: ")
    assert Path(out["final_image"]["uri"]).is_relative_to(data_dir)


async def test_a_context_of_the_wrong_type_is_a_clear_error(data_dir: Path) -> None:
    loop = fake_graph(ScriptedThinker(verdicts((9, 9, "done"))))
    with pytest.raises(BadInputError, match="LoopSettings or a dict of its fields, not int"):
        await parent_graph(loop).ainvoke(
            {"image": str(EXAMPLES / "chelsea.png"), "instruction": "add a hat"},
            {"configurable": {"thread_id": "parent-bad"}},
            context=42,
        )


async def test_loop_as_a_subgraph_node(data_dir: Path) -> None:
    loop = fake_graph(ScriptedThinker(verdicts((3, 3, "again"), (9, 9, "done"))))

    def report(state: Parent) -> Parent:
        return {"summary": f"{state['stop_reason']}: {state['final_image']['sha256'][:8]}"}

    parent = (
        StateGraph(Parent)
        .add_node("loop", loop)
        .add_node("report", report)
        .add_edge(START, "loop")
        .add_edge("loop", "report")
        .add_edge("report", END)
        .compile(checkpointer=memory_checkpointer())
    )
    out = await parent.ainvoke(
        {"image": str(EXAMPLES / "chelsea.png"), "instruction": "add a hat"},
        {"configurable": {"thread_id": "parent-1"}},
        context=make_settings(data_dir),
    )
    assert out["stop_reason"] == "threshold_met"
    assert Path(out["final_image"]["uri"]).is_file()
    assert out["summary"].startswith("threshold_met: ")


async def test_loop_as_a_structured_tool(data_dir: Path) -> None:
    editor = ScriptedEditor()
    graph = fake_graph(ScriptedThinker(verdicts((3, 3, "red hat"), (4, 4, "bright red hat"), (9, 8, "x"))), editor,
                       checkpointer=memory_checkpointer())
    tool = make_tool(graph, make_settings(data_dir))
    assert tool.name == "think_while_edit"
    assert set(tool.args) == {"image", "instruction", "max_rounds", "seed"}
    result = await tool.ainvoke({"image": str(EXAMPLES / "chelsea.png"), "instruction": "add a hat", "max_rounds": 2})
    assert result["rounds"] == 2 and result["stop_reason"] == "max_rounds"
    assert result["instructions"] == ["add a hat", "red hat"]
    assert result["final_image"].startswith("thinkedit://artifacts/")
    # Chain: the first result's URI is the next call's image.
    second = await tool.ainvoke({"image": result["final_image"], "instruction": "now make it blue", "max_rounds": 1})
    assert second["rounds"] == 1
    assert editor.calls[-1].image.size == editor.calls[0].image.size
    assert artifact_uri(ImageRef(sha256="a" * 64, uri="/x", width=1, height=1)).endswith("a" * 64 + ".png")


async def test_tool_reports_bad_input(data_dir: Path) -> None:
    tool = make_tool(fake_graph(ScriptedThinker(verdicts((9, 9, "x")))), make_settings(data_dir))
    import pytest

    from thinkedit.tools.errors import BadInputError

    with pytest.raises(BadInputError, match="image not found"):
        await tool.ainvoke({"image": "/no/such.png", "instruction": "x"})
    with pytest.raises(BadInputError, match="fetching URLs is not supported"):
        await tool.ainvoke({"image": "https://example.com/a.png", "instruction": "x"})


def load_example():
    import importlib.util

    spec = importlib.util.spec_from_file_location("multi_edit_workflow", EXAMPLES / "multi_edit_workflow.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its TypedDict's annotations resolve through sys.modules
    spec.loader.exec_module(module)
    return module


def test_split_request() -> None:
    split = load_example().split_request
    assert split("put a hat on the cat; make the sky blue") == ["put a hat on the cat", "make the sky blue"]
    assert split("add a hat, then make it red and then blur the background") == [
        "add a hat", "make it red", "blur the background"]
    assert split(" ; ") == []


async def test_example_workflow_chains_the_loop_per_part(data_dir: Path) -> None:
    example = load_example()
    editor = ScriptedEditor()
    loop = fake_graph(ScriptedThinker(verdicts((9, 9, "x"))), editor)
    workflow = example.build_workflow(loop)
    out = await workflow.ainvoke(
        {"request": "put a hat on the cat; then make the background blue", "image": str(EXAMPLES / "chelsea.png")},
        {"configurable": {"thread_id": "wf"}},
        context=make_settings(data_dir),
    )
    assert [r["instruction"] for r in out["results"]] == ["put a hat on the cat", "make the background blue"]
    assert [c.instruction for c in editor.calls] == ["put a hat on the cat", "make the background blue"]
    # The second part edited the first part's result, not the original photo.
    first_result = Path(out["results"][0]["path"])
    from PIL import Image

    assert editor.calls[1].image.tobytes() == Image.open(first_result).convert("RGB").tobytes()
    assert editor.calls[0].image.tobytes() == Image.open(EXAMPLES / "chelsea.png").convert("RGB").tobytes()


def test_the_tool_answers_a_sync_invoke_as_its_async_one(data_dir: Path) -> None:
    editor = ScriptedEditor()
    graph = fake_graph(ScriptedThinker(verdicts((3, 3, "red hat"), (9, 8, "x"))), editor,
                       checkpointer=memory_checkpointer())
    tool = make_tool(graph, make_settings(data_dir))
    result = tool.invoke({"image": str(EXAMPLES / "chelsea.png"), "instruction": "add a hat", "max_rounds": 2})
    assert result["status"] == "done" and result["rounds"] == 2 and result["instructions"] == ["add a hat", "red hat"]
    assert result["final_image"].startswith("thinkedit://artifacts/") and len(editor.calls) == 2


async def test_the_tool_answers_a_sync_invoke_made_inside_an_event_loop(data_dir: Path) -> None:
    tool = make_tool(fake_graph(ScriptedThinker(verdicts((9, 9, "x")))), make_settings(data_dir))
    result = tool.invoke({"image": str(EXAMPLES / "chelsea.png"), "instruction": "add a hat"})  # a sync call in async code
    assert result["status"] == "done" and result["rounds"] == 1


def test_a_tool_that_would_pause_for_review_is_refused_when_made(data_dir: Path) -> None:
    with pytest.raises(BadInputError, match="cannot pause a run for review"):
        make_tool(fake_graph(ScriptedThinker(verdicts((3, 3, "x")))), make_settings(data_dir, review=True))


async def test_the_tools_final_path_is_a_local_file_for_a_remote_store(data_dir: Path) -> None:
    """A shared (fsspec) store's image is named by a local copy an agent can open, not the store's URL."""
    url = "memory://alice:ftp-only-s3cret@files.example/tool-store"
    tool = make_tool(fake_graph(ScriptedThinker(verdicts((9, 9, "x")))), make_settings(data_dir, artifacts_url=url))
    result = await tool.ainvoke({"image": str(EXAMPLES / "chelsea.png"), "instruction": "add a hat", "max_rounds": 1})
    path = Path(result["final_path"])
    assert path.is_file() and "s3cret" not in result["final_path"], result
    assert Image.open(path).size == Image.open(EXAMPLES / "chelsea.png").size


async def test_a_run_given_overrides_opens_a_password_store_with_its_password(data_dir: Path) -> None:
    """Settings resolved into the graph's state keep the store's URL whole: its nodes open the store with it."""
    url = "memory://alice:ftp-only-s3cret@files.example/overrides-store"
    graph = fake_graph(ScriptedThinker(verdicts((9, 9, "x"))))
    done = await graph.ainvoke(
        {"image": str(EXAMPLES / "chelsea.png"), "instruction": "add a hat", "overrides": {"max_rounds": 1}},
        {"configurable": {"thread_id": "overrides"}}, context=make_settings(data_dir, artifacts_url=url, max_rounds=2),
    )
    assert done["status"] == "done" and done["final_image"] is not None
