"""Measure what the graph costs around the engines, where a round's time goes, and what best-of-K costs.

    PYTHONPATH=. python bench/loop.py [--samples 5]

(a) loop overhead: a run of the graph (Runner: checkpoints, artifact store, events) ÷ a plain Python
    loop calling the same in-process engines (DiffusersEditor, TransformersThinker: one BackendCache)
    with the same seeds and instructions, 3 tiny rounds;
(b) per-round split of the graph's wall time into edit, think and everything else;
(c) best-of-K on CPU: time per round with ``candidates=4`` ÷ ``candidates=1``.
Samples alternate between the two sides of each ratio, so drifts in machine load hit both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.mcp_overhead import IMAGE, INSTRUCTION  # noqa: E402

ROUNDS = 3


def loop_settings(data_dir: Path, **overrides: Any) -> Any:
    """Return tiny settings that run ``ROUNDS`` rounds (thresholds no random thinker reaches)."""
    from thinkedit.agent.settings import LoopSettings

    values = {"max_rounds": ROUNDS, "seed": 0, "semantic_threshold": 10, "quality_threshold": 10, **overrides}
    return LoopSettings.from_profile("tiny", data_dir=str(data_dir), **values)


async def graph_run(runner: Any, settings: Any) -> tuple[float, Any]:
    """Run the graph once; return its wall seconds and final state."""
    started = time.perf_counter()
    state = await runner.start(runner.prepare(IMAGE, INSTRUCTION, settings), on_event=lambda event: None)
    seconds = time.perf_counter() - started
    assert state is not None and state.status == "done", state
    return seconds, state


async def plain_run(backends: Any, settings: Any, source: Any, rounds: int) -> tuple[float, list[str]]:
    """Run the same rounds as a bare loop over the engines; return its wall seconds and instructions used."""
    from thinkedit.tools.types import EditRequest, JudgeRequest

    started = time.perf_counter()
    editor, thinker = backends.editor(settings.editor), backends.thinker(settings.thinker)
    instruction, used = INSTRUCTION, []
    for index in range(1, rounds + 1):
        used.append(instruction)
        result = await editor.edit(EditRequest(image=source, instruction=instruction, seed=settings.seed_for(index)))
        verdict = await thinker.judge(JudgeRequest(source=source, edited=result.image, original_instruction=INSTRUCTION,
                                                   current_instruction=instruction,
                                                   seed=settings.thinker_seed_for(index)))
        instruction = verdict.refined_instruction
    return time.perf_counter() - started, used


async def measure(data_dir: Path, samples: int) -> dict[str, float]:
    """Take all three measurements on one set of warm engines; return the medians and ratios."""
    from thinkedit.agent.runs import Runner
    from thinkedit.tools.registry import BackendCache
    from thinkedit.tools.store import ArtifactStore

    backends = BackendCache()
    one, four = loop_settings(data_dir), loop_settings(data_dir, max_rounds=1, candidates=4)
    single = loop_settings(data_dir, max_rounds=1)
    async with Runner.open(data_dir, backends=backends) as runner:
        _, state = await graph_run(runner, one)  # warm-up: builds and loads the engines
        await graph_run(runner, four)
        source = ArtifactStore(one.artifacts_dir).get(state.source)
        rounds = len(state.rounds)
        _, used = await plain_run(backends, one, source, rounds)
        assert used == [r.instruction for r in state.rounds], "the plain loop must repeat the graph's trajectory"
        graph_s, plain_s, edit_s, think_s, k1_s, k4_s = [], [], [], [], [], []
        for _ in range(samples):
            seconds, state = await graph_run(runner, one)
            graph_s.append(seconds / len(state.rounds))
            edit_s.append(sum(r.edit_seconds for r in state.rounds) / len(state.rounds))
            think_s.append(sum(r.think_seconds for r in state.rounds) / len(state.rounds))
            plain_s.append((await plain_run(backends, one, source, rounds))[0] / rounds)
            k1_s.append((await graph_run(runner, single))[0])
            k4_s.append((await graph_run(runner, four))[0])
    per_round, edit, think = statistics.median(graph_s), statistics.median(edit_s), statistics.median(think_s)
    plain, k1, k4 = statistics.median(plain_s), statistics.median(k1_s), statistics.median(k4_s)
    return {"rounds": rounds, "graph_round_s": per_round, "plain_round_s": plain, "graph_over_plain": per_round / plain,
            "edit_share": edit / per_round, "think_share": think / per_round,
            "other_share": max(0.0, 1 - (edit + think) / per_round), "edit_s": edit, "think_s": think,
            "k1_round_s": k1, "k4_round_s": k4, "k4_over_k1": k4 / k1}


def figures(samples: int = 5) -> dict[str, float]:
    """Measure in a scratch data directory with torch's parallel runtime started here first."""
    from thinkedit.agent.settings import LoopSettings
    from thinkedit.tools.registry import prime_in_process_runtime

    tiny = LoopSettings.from_profile("tiny")
    prime_in_process_runtime(tiny.editor, tiny.thinker)  # on the main thread, before engines run in threads
    with tempfile.TemporaryDirectory(prefix="thinkedit-loop-") as tmp:
        return asyncio.run(measure(Path(tmp), samples))


def main() -> None:
    """Print the three measurements."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=5, help="Alternating samples per side (default 5).")
    f = figures(parser.parse_args().samples)
    print(f"(a) per round: graph {f['graph_round_s'] * 1000:.0f} ms, plain loop {f['plain_round_s'] * 1000:.0f} ms"
          f" -> graph / plain = {f['graph_over_plain']:.2f}  ({f['rounds']:.0f} rounds per run)")
    print(f"(b) round split: edit {f['edit_share']:.0%}, think {f['think_share']:.0%}, other {f['other_share']:.0%}")
    print(f"(c) one round: K=4 {f['k4_round_s'] * 1000:.0f} ms, K=1 {f['k1_round_s'] * 1000:.0f} ms"
          f" -> K=4 / K=1 = {f['k4_over_k1']:.2f}")


if __name__ == "__main__":
    main()
