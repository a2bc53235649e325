"""Split a multi-part edit request into single edits and run the Think-while-Edit loop on each.

The loop graph is a node of this parent graph; each part's result image (a
``thinkedit://artifacts/…`` URI) is the next part's input, so the edits chain. Run it with the
offline tiny profile (noise images, meaningless verdicts — it shows the wiring):

    .venv/bin/python examples/multi_edit_workflow.py examples/chelsea.png \
        "put a red party hat on the cat; make the background blue"
"""

from __future__ import annotations

import asyncio
import operator
import re
import sys
from typing import Annotated, Any, Literal, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from thinkedit.agent import LoopSettings, build_graph
from thinkedit.agent.settings import artifact_uri
from thinkedit.tools.types import ImageRef


class Workflow(TypedDict, total=False):
    """The parent graph's state; ``image``/``instruction`` in, ``final_image``/``stop_reason`` out of the loop."""

    request: str
    parts: list[str]
    image: str
    instruction: str
    final_image: dict[str, Any]  # an ImageRef as the loop's channels hold it: JSON-native data
    stop_reason: str
    results: Annotated[list[dict[str, Any]], operator.add]


def split_request(request: str) -> list[str]:
    """Split "do A; then B and then C" into ["do A", "B", "C"]: one edit per part."""
    pieces = re.split(r";|\n|\bthen\b|\band then\b", request, flags=re.IGNORECASE)
    return [p.strip(" ,.") for p in pieces if p.strip(" ,.")]


def plan(state: Workflow) -> Workflow:
    """Cut the request into parts."""
    parts = split_request(state["request"])
    if not parts:
        raise ValueError("the request holds no edit")
    return {"parts": parts, "results": []}


def next_part(state: Workflow) -> Workflow:
    """Give the loop the next part, editing the previous part's result."""
    done = state.get("results", [])
    image = done[-1]["image"] if done else state["image"]
    return {"instruction": state["parts"][len(done)], "image": image}


def collect(state: Workflow) -> Workflow:
    """Record the part's result; its image feeds the next part."""
    final = ImageRef.model_validate(state["final_image"])
    return {
        "results": [
            {
                "instruction": state["instruction"],
                "image": artifact_uri(final),
                "path": final.uri,
                "stop_reason": state["stop_reason"],
            }
        ]
    }


def more_parts(state: Workflow) -> Literal["next_part", "__end__"]:
    """Go on while parts remain."""
    return "next_part" if len(state["results"]) < len(state["parts"]) else END


def build_workflow(loop: CompiledStateGraph | None = None) -> CompiledStateGraph:
    """Compile the parent workflow around a compiled loop graph (``thinkedit.agent.build_graph()`` by default)."""
    return (
        StateGraph(Workflow)
        .add_node("plan", plan)
        .add_node("next_part", next_part)
        .add_node("loop", loop or build_graph())
        .add_node("collect", collect)
        .add_edge(START, "plan")
        .add_edge("plan", "next_part")
        .add_edge("next_part", "loop")
        .add_edge("loop", "collect")
        .add_conditional_edges("collect", more_parts, ["next_part", END])
        .compile(checkpointer=InMemorySaver())
    )


async def main(image: str, request: str, profile: str = "tiny") -> None:
    """Run the workflow and print each part's result."""
    workflow = build_workflow()
    out = await workflow.ainvoke(
        {"request": request, "image": image},
        {"configurable": {"thread_id": "multi-edit"}},
        context=LoopSettings.from_profile(profile, max_rounds=2),
    )
    for i, result in enumerate(out["results"], 1):
        print(f"{i}. {result['instruction']!r} → {result['path']} ({result['stop_reason']})")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1], sys.argv[2], *sys.argv[3:4]))
