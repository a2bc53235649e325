"""Drive a benchmark through the loop and judge each item with and without it.

Every item runs once through the Think-while-Edit graph. Its first round *is* the single edit
without the loop (same source, instruction and seed as a ``max_rounds=1`` run), and the round
the loop returns is the loop's result; the judge scores both. Items run concurrently up to a
limit; each keeps a deterministic run id, so an interrupted item resumes from its checkpoint,
and an item with a result line in both settings' files is skipped on the next run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from thinkedit.apps.evaluation.benchmarks import BenchItem
from thinkedit.apps.evaluation.judge import Judge, JudgeScore
from thinkedit.apps.evaluation.results import Setting, append_result, completed_keys, read_results, results_path
from thinkedit.agent.recording import TRAJECTORY_FILE, record_trajectory
from thinkedit.agent.runs import Runner
from thinkedit.agent.settings import LoopSettings
from thinkedit.agent.state import Round, RunState
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.safenames import safe_component

log = logging.getLogger(__name__)


@dataclass
class EvalPlan:
    """Say what to evaluate and where: the benchmark, the loop's settings, the judge, the limits."""

    bench: str
    out_dir: Path
    settings: LoopSettings
    judge: Judge
    concurrency: int = 1
    record_dir: Path | None = None


@dataclass
class ItemOutcome:
    """Report what became of one item: judged now, skipped as already judged, or failed."""

    item: BenchItem
    status: Literal["done", "skipped", "failed"]
    single: dict[str, Any] | None = None
    loop: dict[str, Any] | None = None
    error: str | None = None


OutcomeCallback = Callable[[ItemOutcome], None]


def eval_run_id(bench: str, key: str, out_dir: str | Path, settings: LoopSettings) -> str:
    """Return the item's run id: stable for this output directory and these loop settings, distinct otherwise.

    The runs live in the data dir, not in ``out_dir``: an output directory deleted and evaluated again
    with other settings must not find (and judge) the runs the earlier settings made.
    """
    loop = settings.model_dump_json(exclude={"data_dir", "profile", "review"})
    digest = hashlib.sha1(f"{Path(out_dir).resolve()}\n{bench}\n{key}\n{loop}".encode()).hexdigest()[:16]
    return f"eval-{bench}-{digest}"


def claim_out_dir(out_dir: str | Path, bench: str, fingerprint: dict[str, Any]) -> None:
    """Record what this output directory evaluates; refuse one that holds results of other settings."""
    path = Path(out_dir) / f"eval-config-{bench}.json"
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in set(previous) | set(fingerprint) if previous.get(k) != fingerprint.get(k))
        if changed:
            raise BadInputError(
                f"{out_dir} holds {bench} results made with other settings ({', '.join(changed)} differ); "
                "use another --out, or delete it to start over"
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fingerprint, indent=2, sort_keys=True), encoding="utf-8")


async def _run_item_loop(runner: Runner, item: BenchItem, run_id: str, settings: LoopSettings) -> RunState:
    """Start the item's run, or finish it from its checkpoint, or return it if already done."""
    try:
        runner.registry.load(run_id)
    except BadInputError:
        record = runner.prepare(item.image, item.instruction, settings, run_id=run_id)
        state = await runner.start(record)
    else:
        state = await runner.state(run_id)
        if state is None or state.status != "done":
            state = await runner.resume(run_id)
    if state is None or state.status != "done":
        raise RuntimeError(f"run {run_id} did not finish (status {state.status if state else 'unknown'})")
    return state


def _result_row(
    plan: EvalPlan, item: BenchItem, setting: Setting, state: RunState, round_: Round, score: JudgeScore, image: str
) -> dict[str, Any]:
    verdict = round_.verdict
    return {
        "bench": plan.bench,
        "setting": setting,
        "key": item.key,
        "task_type": item.task_type,
        "language": item.language,
        "instruction": item.instruction,
        "run_id": state.run_id,
        "round": round_.index,
        "rounds": len(state.rounds) if setting == "loop" else 1,
        "stop_reason": state.stop_reason if setting == "loop" else None,
        "final_instruction": round_.instruction,
        "image": image,
        "semantic": score.semantic,
        "quality": score.quality,
        "overall": score.overall,
        "judge": score.judge,
        "judge_reasoning": score.reasoning,
        "judge_note": score.note,
        "judge_satisfied": score.satisfied,
        "judge_seconds": score.seconds,
        "thinker_semantic": verdict.semantic if verdict else None,
        "thinker_quality": verdict.quality if verdict else None,
        "thinker_overall": verdict.overall if verdict else None,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


async def _evaluate_item(plan: EvalPlan, runner: Runner, item: BenchItem) -> ItemOutcome:
    """Run, judge and record one item; write its two result lines (single first, loop last)."""
    run_id = eval_run_id(plan.bench, item.key, plan.out_dir, plan.settings)
    state = await _run_item_loop(runner, item, run_id, plan.settings)
    first = state.rounds[0]
    chosen = next((r for r in state.rounds if r.index == state.best_round), state.rounds[-1])
    store = runner.store
    source, first_image = await asyncio.to_thread(lambda: (store.get(state.source), store.get(first.image)))
    single_score = await plan.judge.score(source, first_image, item)
    if chosen.image.sha256 == first.image.sha256:
        loop_score = single_score  # the same picture gets the same score
    else:
        loop_score = await plan.judge.score(source, await asyncio.to_thread(store.get, chosen.image), item)
    rows: dict[Setting, dict[str, Any]] = {}
    for setting, round_, score in (("single", first, single_score), ("loop", chosen, loop_score)):
        relative = f"outputs/{setting}/{item.output_name}"
        target = plan.out_dir / relative
        if not target.resolve().is_relative_to(plan.out_dir.resolve()):
            raise BadInputError(f"item {item.key!r} names an output outside the output directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.copyfile, store.local_path(round_.image), target)
        rows[setting] = _result_row(plan, item, setting, state, round_, score, relative)
    if plan.record_dir is not None:
        await _record(plan, store, item, state, rows)
    append_result(results_path(plan.out_dir, plan.bench, "single"), rows["single"])
    append_result(results_path(plan.out_dir, plan.bench, "loop"), rows["loop"])
    return ItemOutcome(item, "done", single=rows["single"], loop=rows["loop"])


async def _record(plan: EvalPlan, store: Any, item: BenchItem, state: RunState, rows: dict[str, Any]) -> None:
    """Record the item's run under ``plan.record_dir``, with the judge's two result rows."""
    extra = {"bench": plan.bench, "item_key": item.key, "judge": {s: rows[s] for s in rows}}
    await asyncio.to_thread(record_trajectory, state, store, plan.record_dir, task_type=item.task_type, extra=extra)


async def _record_judged(plan: EvalPlan, runner: Runner, item: BenchItem) -> None:
    """Record an item an earlier evaluation judged, when ``--record`` comes only now (once: a recording stays)."""
    assert plan.record_dir is not None
    run_id = eval_run_id(plan.bench, item.key, plan.out_dir, plan.settings)
    if (plan.record_dir / safe_component(run_id) / TRAJECTORY_FILE).is_file():
        return
    try:
        state = await runner.state(run_id)
    except BadInputError:
        state = None
    if state is None or state.source is None or not state.rounds:
        log.warning("item %s was judged, but its run %s is not in this data dir: not recorded", item.key, run_id)
        return
    rows = {setting: row for setting in ("single", "loop")
            for row in read_results(results_path(plan.out_dir, plan.bench, setting)) if row.get("key") == item.key}
    await _record(plan, runner.store, item, state, rows)


async def evaluate(
    items: list[BenchItem], plan: EvalPlan, runner: Runner, on_outcome: OutcomeCallback | None = None
) -> list[ItemOutcome]:
    """Evaluate ``items`` at most ``plan.concurrency`` at a time; already judged items are skipped."""
    if plan.settings.review:
        plan.settings = plan.settings.model_copy(update={"review": False})
    done = completed_keys(plan.out_dir, plan.bench)
    semaphore = asyncio.Semaphore(max(1, plan.concurrency))

    def report(outcome: ItemOutcome) -> ItemOutcome:
        if on_outcome is not None:
            on_outcome(outcome)
        return outcome

    async def one(item: BenchItem) -> ItemOutcome:
        if item.key in done:
            if plan.record_dir is not None:
                await _record_judged(plan, runner, item)
            return report(ItemOutcome(item, "skipped"))
        async with semaphore:
            try:
                outcome = await _evaluate_item(plan, runner, item)
            except Exception as exc:  # noqa: BLE001 - one bad item must not stop the benchmark
                log.warning("item %s failed: %s: %s", item.key, type(exc).__name__, exc, exc_info=log.isEnabledFor(logging.DEBUG))
                outcome = ItemOutcome(item, "failed", error=f"{type(exc).__name__}: {exc}")
        return report(outcome)

    return list(await asyncio.gather(*(one(item) for item in items)))
