"""Measure what the graph costs around the engines, where a round's time goes, and how that scales.

    PYTHONPATH=. python bench/loop.py [--samples 5] [--scaling-samples 2]

(a) loop overhead: a run of the graph (Runner: checkpoints, artifact store, events) ÷ a plain Python
    loop calling the same in-process engines (DiffusersEditor, TransformersThinker: one BackendCache)
    with the same seeds and instructions, 3 tiny rounds on the 451×300 example photo;
(b) bookkeeping per round: a graph round's wall time less its edit and critique time;
(c) best-of-K on CPU: time per round with ``candidates=4`` ÷ ``candidates=1``;
(d) a scaling table: image side 128 / 256 / 512 px, 1 / 3 / 5 rounds, K = 1 / 2 / 4;
(e) the floor: the same bookkeeping for a bare LangGraph graph of the same steps around the same
    engines and saver (``bench/bare_graph.py``), measured in the same samples as (a), (b) and the
    three image sizes.
Each sample is a pair (a graph run and a plain run, back to back; with the floor, a triple), so
drifts in machine load hit every side alike. Every sample takes a fresh copy of its photo, one
pixel changed (``Photos``), and a seed of its own, so the graph stores images it has not stored
before, as a user's run does (one photo and seed over and over would skip every encode: the store
keeps identical pixels once); each side reads that photo file in its own time. The samples rotate
which side goes first, so none always follows another (torch's threads spin on for a moment after
a run, charging whichever side comes next). Each ratio is the median of the per-pair ratios with
its IQR, and the CPU pressure (PSI) of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bare_graph import BareLoop, bookkeeping, critique_once, decoded, edit_once  # noqa: E402
from bench.mcp_overhead import IMAGE, INSTRUCTION  # noqa: E402
from bench.photos import Photos  # noqa: E402
from bench.spread import Pressure, pair_ratios, spread  # noqa: E402

ROUNDS = 3


def loop_settings(data_dir: Path, **overrides: Any) -> Any:
    """Return tiny settings that run ``max_rounds`` rounds (thresholds no random thinker reaches)."""
    from thinkedit.agent.settings import LoopSettings

    values = {"max_rounds": ROUNDS, "seed": 0, "semantic_threshold": 10, "quality_threshold": 10, **overrides}
    return LoopSettings.from_profile("tiny", data_dir=str(data_dir), **values)


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


def square(side: int, directory: Path) -> Path:
    """Write the example photo resized to ``side``×``side`` and return its path."""
    path = directory / f"photo-{side}.png"
    Image.open(IMAGE).convert("RGB").resize((side, side), Image.Resampling.LANCZOS).save(path)
    return path


async def measure(data_dir: Path, samples: int, scaling_samples: int) -> dict[str, Any]:
    """Take every measurement on one set of warm engines."""
    from thinkedit.agent.runs import Runner
    from thinkedit.tools.registry import BackendCache
    from thinkedit.tools.store import ArtifactStore

    backends = BackendCache()
    main = loop_settings(data_dir)
    async with Runner.open(data_dir, backends=backends) as runner, \
            BareLoop.open(data_dir / "bare-graph.sqlite", backends) as bare:
        _, state = await graph_run(runner, main, IMAGE)  # warm-up: builds and loads the engines
        await graph_run(runner, loop_settings(data_dir, max_rounds=1, candidates=4), IMAGE)
        source = ArtifactStore(main.artifacts_dir).get(state.source)
        _, used = await plain_run(backends, main, source, len(state.rounds))
        assert used == [r.instruction for r in state.rounds], "the plain loop must repeat the graph's trajectory"
        _, final = await bare.run(main, source, INSTRUCTION, len(state.rounds))
        assert final["used"] == used, "the bare graph must repeat the graph's trajectory"
        photos = Photos(data_dir / "photos")
        figures: dict[str, Any] = {}
        with Pressure() as pressure:
            headline = Pairs()
            for _ in range(samples):
                await sample(runner, backends, main, IMAGE, headline, photos, bare=bare)
            figures["headline"] = headline.summary()
            k1, k4 = Pairs(), Pairs()
            for _ in range(samples):
                await sample(runner, backends, loop_settings(data_dir, max_rounds=1), IMAGE, k1, photos, plain=False)
                await sample(runner, backends, loop_settings(data_dir, max_rounds=1, candidates=4), IMAGE, k4,
                             photos, plain=False)
            figures["k4_over_k1"] = pair_ratios(k4.graph, k1.graph)
            scaling: list[tuple[str, dict[str, Any]]] = []
            with tempfile.TemporaryDirectory(prefix="thinkedit-sizes-") as tmp:
                for side in (128, 256, 512):
                    pairs, image = Pairs(), square(side, Path(tmp))
                    await graph_run(runner, main, photos.fresh(image))  # not counted: the engines meet this size
                    for _ in range(scaling_samples):
                        await sample(runner, backends, main, image, pairs, photos, bare=bare)
                    scaling.append((f"{side}×{side} px, 3 rounds, K=1", pairs.summary()))
            for rounds in (1, 3, 5):
                pairs = Pairs()
                for _ in range(scaling_samples):
                    await sample(runner, backends, loop_settings(data_dir, max_rounds=rounds), IMAGE, pairs, photos)
                scaling.append((f"451×300 px, {rounds} round(s), K=1", pairs.summary()))
            for k in (1, 2, 4):
                pairs = Pairs()
                for _ in range(scaling_samples):
                    await sample(runner, backends, loop_settings(data_dir, max_rounds=1, candidates=k), IMAGE, pairs,
                                 photos)
                scaling.append((f"451×300 px, 1 round, K={k}", pairs.summary()))
            figures["scaling"] = scaling
        figures["pressure"] = pressure.text()
    return figures


def figures(samples: int = 5, scaling_samples: int = 2) -> dict[str, Any]:
    """Measure in a scratch data directory with torch's parallel runtime started here first."""
    from thinkedit.agent.settings import LoopSettings
    from thinkedit.tools.registry import prime_in_process_runtime

    tiny = LoopSettings.from_profile("tiny")
    prime_in_process_runtime(tiny.editor, tiny.thinker)  # on the main thread, before engines run in threads
    with tempfile.TemporaryDirectory(prefix="thinkedit-loop-") as tmp:
        return asyncio.run(measure(Path(tmp), samples, scaling_samples))


def scaling_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """Return the scaling rows as a Markdown table."""
    lines = ["| configuration | graph ÷ plain | per round (graph) | bookkeeping per round | "
             "the same for a bare LangGraph graph |", "|---|---|---|---|---|"]
    for name, s in rows:
        floor = s["bare_bookkeeping"].text(0, 1000, " ms") if "bare_bookkeeping" in s else "—"
        lines.append(f"| {name} | {s['graph_over_plain'].text()} | {s['graph_round'].text(0, 1000, ' ms')} | "
                     f"{s['bookkeeping'].text(0, 1000, ' ms')} | {floor} |")
    return "\n".join(lines)


def main() -> None:
    """Print the measurements."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=5, help="Pairs for the headline ratios (default 5).")
    parser.add_argument("--scaling-samples", type=int, default=2, help="Pairs per scaling row (default 2).")
    args = parser.parse_args()
    f = figures(args.samples, args.scaling_samples)
    h = f["headline"]
    print(f"(a) graph ÷ plain, 3 rounds, 451×300: {h['graph_over_plain'].text()}"
          f"  (graph {h['graph_round'].text(0, 1000, ' ms')} per round)")
    print(f"(b) bookkeeping per round: {h['bookkeeping'].text(0, 1000, ' ms')}")
    print(f"(c) K=4 ÷ K=1, one round: {f['k4_over_k1'].text()}")
    print("(d) scaling:\n" + scaling_table(f["scaling"]))
    print(f"(e) the floor, a bare LangGraph graph of the same steps, engines and saver: bookkeeping per round "
          f"{h['bare_bookkeeping'].text(0, 1000, ' ms')}; graph ÷ bare graph {h['graph_over_bare'].text()}")
    print(f["pressure"])


if __name__ == "__main__":
    main()
