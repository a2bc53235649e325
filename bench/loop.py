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
from pathlib import Path
from typing import Any

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bench_support.bare_graph import BareLoop  # noqa: E402
from tests.bench_support.pairs import Pairs, graph_run, plain_run, sample, scaling_table  # noqa: E402
from tests.bench_support.photos import IMAGE, INSTRUCTION, Photos  # noqa: E402
from tests.bench_support.spread import Pressure, pair_ratios  # noqa: E402

ROUNDS = 3


def loop_settings(data_dir: Path, **overrides: Any) -> Any:
    """Return tiny settings that run ``max_rounds`` rounds (thresholds no random thinker reaches)."""
    from thinkedit.agent.settings import LoopSettings

    values = {"max_rounds": ROUNDS, "seed": 0, "semantic_threshold": 10, "quality_threshold": 10, **overrides}
    return LoopSettings.from_profile("tiny", data_dir=str(data_dir), **values)


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
