"""The loop as a LangChain tool, so tool-calling agents can run it in-process."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.tools import StructuredTool
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, ConfigDict, Field

from thinkedit.agent.settings import LoopSettings, artifact_uri
from thinkedit.agent.state import RunState
from thinkedit.agent.view import RunView, run_view
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.locations import is_url
from thinkedit.tools.store import ArtifactStore


class ThinkWhileEditArgs(BaseModel):
    """Arguments of the ``think_while_edit`` tool."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(description="Image to edit: a local path or thinkedit://artifacts/<sha256>.png.")
    instruction: str = Field(min_length=1, description="What to change, in words.")
    max_rounds: int | None = Field(default=None, ge=1, le=50, description="At most this many edits.")
    seed: int | None = Field(default=None, ge=0, description="Seed of the edits.")


def summarize(view: RunView, final_path: str | None = None) -> dict[str, Any]:
    """Return what a calling agent needs of a run's view: the result image, its scores and why the loop stopped.

    ``final_path``: a local file of the result image (a remote store's cached copy); else where it is stored.
    """
    chosen = view.chosen()
    return {
        "run_id": view.run_id,
        "status": view.status,
        "stop_reason": view.stop_reason,
        "best_round": view.best_round,
        "rounds": len(view.rounds),
        "final_image": artifact_uri(view.final_image) if view.final_image else None,
        "final_path": final_path or (view.final_image.uri if view.final_image else None),
        "semantic": chosen.semantic if chosen else None,
        "quality": chosen.quality if chosen else None,
        "instructions": [r.instruction for r in view.rounds],
    }


def make_tool(graph: CompiledStateGraph, settings: LoopSettings, *, name: str = "think_while_edit") -> StructuredTool:
    """Wrap a compiled loop graph as a ``StructuredTool`` that runs it with ``settings``.

    The tool answers ``ainvoke`` on the caller's event loop and ``invoke`` on an event loop of its own
    (in a worker thread when the calling thread runs one). A tool call cannot pause for a person, so
    ``settings`` with ``review`` on are refused here, not left to return a paused run nobody can resume.
    """
    if settings.review:
        raise BadInputError("the LangChain tool cannot pause a run for review (a tool call has no one to answer "
                            "it): make it with review off, or run reviewed edits through the Runner or MCP")

    async def run(image: str, instruction: str, max_rounds: int | None = None, seed: int | None = None) -> dict[str, Any]:
        overrides = {k: v for k, v in {"max_rounds": max_rounds, "seed": seed}.items() if v is not None}
        context = settings.model_copy(update=overrides) if overrides else settings
        run_id = uuid.uuid4().hex[:12]
        config = {"configurable": {"thread_id": run_id}}
        values = await graph.ainvoke(
            {"image": image, "instruction": instruction, "run_id": run_id}, config, context=context
        )
        view = run_view(RunState.model_validate(values), context)
        if view.final_image is None or not is_url(context.artifacts_location):
            return summarize(view)
        store = await asyncio.to_thread(ArtifactStore, context.artifacts_location)  # a remote store: a local copy
        return summarize(view, str(await asyncio.to_thread(store.local_path, view.final_image)))

    def run_sync(**arguments: Any) -> dict[str, Any]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread (a sync agent, or LangGraph's thread for sync tools)
            return asyncio.run(run(**arguments))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="thinkedit-tool") as pool:  # never nest loops
            return pool.submit(asyncio.run, run(**arguments)).result()

    return StructuredTool.from_function(
        func=run_sync,
        coroutine=run,
        name=name,
        description=(
            "Edit an image following an instruction, critiquing and refining until the result is "
            "right. Returns the result image's URI and path, its scores and why it stopped."
        ),
        args_schema=ThinkWhileEditArgs,
    )
