"""A bare LangGraph graph of the loop's shape around the same engines: the floor our bookkeeping is read against.

``prepare → edit → critique → (refine → edit | stop)``, the steps thinkedit's graph takes, with a
``TypedDict`` state of a few strings and numbers, ``AsyncSqliteSaver`` on its own SQLite file in
WAL with ``synchronous=NORMAL`` (as thinkedit's checkpointer), ``durability="async"`` and the same
stream modes. Its first step reads the photo file as thinkedit's intake does (``decoded``); the edit
and critique nodes send the engines the very requests the plain loop of ``bench/loop.py`` sends
(``edit_once`` and ``critique_once`` serve both); images stay in memory (nothing is hashed,
encoded or stored), no events, no run records, no locks. A round's wall time
less its edit and critique time is then what LangGraph and its saver cost around the engines on
this machine: thinkedit's bookkeeping cannot be cheaper than this unless it takes fewer steps.
"""

from __future__ import annotations

import asyncio
import operator
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypedDict


def decoded(source: Any) -> Any:
    """Return ``source`` decoded: a photo file as thinkedit's intake reads it (no cache), or the image given."""
    if isinstance(source, (str, Path)):
        from thinkedit.tools.images import load_image

        return load_image(source, cache=False)
    return source


async def edit_once(editor: Any, settings: Any, source: Any, instruction: str, index: int) -> tuple[list[Any], float]:
    """Send the editor round ``index``'s request, as every side of the loop benchmark does; return images, seconds."""
    from thinkedit.tools.types import EditRequest

    started = time.perf_counter()
    result = await editor.edit(EditRequest(image=source, instruction=instruction, seed=settings.seed_for(index),
                                           num_images=settings.candidates))
    return result.images, time.perf_counter() - started


async def critique_once(thinker: Any, settings: Any, source: Any, images: list[Any], original: str, instruction: str,
                        index: int) -> tuple[Any, float]:
    """Have the thinker judge round ``index``'s images; return the best verdict (as the graph picks it) and seconds."""
    from thinkedit.tools.types import JudgeRequest

    started = time.perf_counter()
    verdicts = await asyncio.gather(*(
        thinker.judge(JudgeRequest(source=source, edited=picture, original_instruction=original,
                                   current_instruction=instruction, seed=settings.thinker_seed_for(index)))
        for picture in images))
    return max(verdicts, key=lambda v: (v.overall, v.semantic)), time.perf_counter() - started


class BareState(TypedDict, total=False):
    """The bare graph's state: the instruction in use, and each round's engine seconds."""

    instruction: str
    proposed: str
    used: Annotated[list[str], operator.add]
    edit_seconds: Annotated[list[float], operator.add]
    think_seconds: Annotated[list[float], operator.add]
    done: bool


class BareLoop:
    """Run the bare graph on one engine pair, one run at a time (``run``)."""

    def __init__(self, saver: Any, backends: Any) -> None:
        self.backends = backends
        self.graph = self._build(saver)
        self._settings: Any = None
        self._source: Any = None
        self._original = ""
        self._rounds = 0
        self._images: list[Any] = []
        self._runs = 0

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path, backends: Any) -> AsyncIterator[BareLoop]:
        """Open the bare graph on a SQLite checkpoint file at ``path`` for the block."""
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with aiosqlite.connect(str(path)) as conn:
            saver = AsyncSqliteSaver(conn)
            await saver.setup()  # WAL journal, tables
            await conn.execute("PRAGMA synchronous=NORMAL")
            yield cls(saver, backends)

    def _build(self, saver: Any) -> Any:
        from langgraph.graph import END, START, StateGraph

        builder = StateGraph(BareState)
        builder.add_node("prepare", self._prepare)
        builder.add_node("edit", self._edit)
        builder.add_node("critique", self._critique)
        builder.add_node("refine", self._refine)
        builder.add_node("stop", self._stop)
        builder.add_edge(START, "prepare")
        builder.add_edge("prepare", "edit")
        builder.add_edge("edit", "critique")
        builder.add_conditional_edges("critique", self._route, ["refine", "stop"])
        builder.add_edge("refine", "edit")
        builder.add_edge("stop", END)
        return builder.compile(checkpointer=saver)

    async def _prepare(self, state: BareState) -> dict[str, Any]:
        self._source = await asyncio.to_thread(decoded, self._source)  # a photo file is read here, as ours reads it
        return {"instruction": state["instruction"]}

    async def _edit(self, state: BareState) -> dict[str, Any]:
        settings, index = self._settings, len(state.get("edit_seconds", [])) + 1
        self._images, seconds = await edit_once(self.backends.editor(settings.editor), settings, self._source,
                                                state["instruction"], index)
        return {"used": [state["instruction"]], "edit_seconds": [seconds]}

    async def _critique(self, state: BareState) -> dict[str, Any]:
        settings, index = self._settings, len(state["edit_seconds"])
        best, seconds = await critique_once(self.backends.thinker(settings.thinker), settings, self._source,
                                            self._images, self._original, state["instruction"], index)
        return {"proposed": best.refined_instruction, "think_seconds": [seconds]}

    def _route(self, state: BareState) -> str:
        return "stop" if len(state["think_seconds"]) >= self._rounds else "refine"

    async def _refine(self, state: BareState) -> dict[str, Any]:
        return {"instruction": state["proposed"]}

    async def _stop(self, state: BareState) -> dict[str, Any]:
        return {"done": True}

    async def run(self, settings: Any, source: Any, instruction: str, rounds: int) -> tuple[float, BareState]:
        """Run ``rounds`` rounds on ``source`` (an image, or a photo file its first step reads); return seconds, state."""
        self._settings, self._source, self._original, self._rounds = settings, source, instruction, rounds
        self._runs += 1
        config = {"configurable": {"thread_id": f"bare-{self._runs}"}}
        started = time.perf_counter()
        async for _ in self.graph.astream({"instruction": instruction}, config, stream_mode=["custom", "updates"],
                                          durability="async"):
            pass
        seconds = time.perf_counter() - started
        state = (await self.graph.aget_state(config)).values
        assert state.get("done") and len(state["used"]) == rounds, state
        return seconds, state


def bookkeeping(seconds: float, state: BareState) -> float:
    """Return a bare run's seconds per round outside its edit and critique calls."""
    rounds = len(state["used"])
    return seconds / rounds - sum(state["edit_seconds"]) / rounds - sum(state["think_seconds"]) / rounds
