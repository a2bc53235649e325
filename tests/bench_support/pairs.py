"""Take one benchmark sample: a graph run beside the same rounds as a plain loop and (the floor) a bare graph.

``bench/loop.py`` takes its figures with these: each sample is a pair (or, with the floor, a triple)
of runs back to back on one fresh photo, so drifts in machine load hit every side alike.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.bench_support.bare_graph import BareLoop, bookkeeping, critique_once, decoded, edit_once
from tests.bench_support.photos import INSTRUCTION, Photos
from tests.bench_support.spread import pair_ratios, spread


async def graph_run(runner: Any, settings: Any, image: Path) -> tuple[float, Any]:
    """Run the graph once; return its wall seconds and final state."""
    started = time.perf_counter()
    state = await runner.start(runner.prepare(image, INSTRUCTION, settings), on_event=lambda event: None)
    seconds = time.perf_counter() - started
    assert state is not None and state.status == "done", state
    return seconds, state


async def plain_run(backends: Any, settings: Any, source: Any, rounds: int) -> tuple[float, list[str]]:
    """Run the same rounds as a plain loop over the engines; return its wall seconds and instructions used.

    ``source``: an image, or a photo file, read (inside the time) as thinkedit's intake reads it.
    """
    started = time.perf_counter()
    source = await asyncio.to_thread(decoded, source)
    editor, thinker = backends.editor(settings.editor), backends.thinker(settings.thinker)
    instruction, used = INSTRUCTION, []
    for index in range(1, rounds + 1):
        used.append(instruction)
        images, _ = await edit_once(editor, settings, source, instruction, index)
        verdict, _ = await critique_once(thinker, settings, source, images, INSTRUCTION, instruction, index)
        instruction = verdict.refined_instruction
    return time.perf_counter() - started, used


class Pairs:
    """Collect (graph, plain[, bare graph]) samples for one configuration: per-round seconds and bookkeeping."""

    def __init__(self) -> None:
        self.graph: list[float] = []
        self.plain: list[float] = []
        self.bookkeeping: list[float] = []
        self.bare: list[float] = []  # the bare LangGraph graph's seconds per round (the floor)
        self.bare_bookkeeping: list[float] = []

    def summary(self) -> dict[str, Any]:
        out = {"graph_over_plain": pair_ratios(self.graph, self.plain), "graph_round": spread(self.graph),
               "plain_round": spread(self.plain), "bookkeeping": spread(self.bookkeeping)}
        if self.bare:
            out |= {"graph_over_bare": pair_ratios(self.graph, self.bare),
                    "bare_bookkeeping": spread(self.bare_bookkeeping)}
        return out


async def sample(runner: Any, backends: Any, settings: Any, image: Path, pairs: Pairs, photos: Photos, *,
                 plain: bool = True, bare: BareLoop | None = None) -> Any:
    """Take one sample: a graph run, (with ``plain``) the plain loop and (with ``bare``) the bare graph.

    Every side gets the same fresh copy of ``image`` (``Photos``) as a file, and reads it in its
    time, and the same seed, new to this sample (a pixel changed in the photo does not survive the
    editor's downscaling: the seed makes its edits new). The sides take turns going first (graph,
    plain, bare; then plain, bare, graph; ...).
    """
    photo = photos.fresh(image)
    settings = settings.model_copy(update={"seed": photos.seed(settings.seed)})

    async def graph_side() -> Any:
        seconds, state = await graph_run(runner, settings, photo)
        rounds = len(state.rounds)
        assert rounds == settings.max_rounds, "no random thinker reaches the thresholds: every run uses every round"
        photos.check(state)
        edit = sum(r.edit_seconds for r in state.rounds) / rounds
        think = sum(r.think_seconds for r in state.rounds) / rounds
        pairs.graph.append(seconds / rounds)
        pairs.bookkeeping.append(seconds / rounds - edit - think)
        return state

    async def plain_side() -> None:
        seconds = (await plain_run(backends, settings, photo, settings.max_rounds))[0]
        pairs.plain.append(seconds / settings.max_rounds)

    async def bare_side() -> None:
        assert bare is not None
        seconds, final = await bare.run(settings, photo, INSTRUCTION, settings.max_rounds)
        pairs.bare.append(seconds / settings.max_rounds)
        pairs.bare_bookkeeping.append(bookkeeping(seconds, final))

    sides = [graph_side] + ([plain_side] if plain else []) + ([bare_side] if bare is not None else [])
    turn = len(pairs.graph) % len(sides)
    state = None
    for side in sides[turn:] + sides[:turn]:
        state = (await side()) or state
    return state


def scaling_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """Return the scaling rows as a Markdown table."""
    lines = ["| configuration | graph ÷ plain | per round (graph) | bookkeeping per round | "
             "the same for a bare LangGraph graph |", "|---|---|---|---|---|"]
    for name, s in rows:
        floor = s["bare_bookkeeping"].text(0, 1000, " ms") if "bare_bookkeeping" in s else "—"
        lines.append(f"| {name} | {s['graph_over_plain'].text()} | {s['graph_round'].text(0, 1000, ' ms')} | "
                     f"{s['bookkeeping'].text(0, 1000, ' ms')} | {floor} |")
    return "\n".join(lines)
