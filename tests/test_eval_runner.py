"""The evaluation runner on the real graph with scripted backends: results, skipping, resuming, limits."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from thinkedit.agent.checkpoint import memory_checkpointer
from thinkedit.apps.evaluation.benchmarks import BenchItem
from thinkedit.apps.evaluation.readers import load_benchmark
from thinkedit.apps.evaluation.judge import Judge
from thinkedit.apps.evaluation.results import read_results, results_path
from thinkedit.apps.evaluation.runner import EvalPlan, ItemOutcome, claim_out_dir, eval_run_id, evaluate
from thinkedit.apps.evaluation.synthetic import write_synthetic_benchmark
from thinkedit.agent.graph import default_retry
from thinkedit.agent.recording import read_trajectories
from thinkedit.agent.runs import Runner
from thinkedit.agent.settings import LoopSettings
from tests.conftest import EXAMPLES
from tests.fakes import FakeBackends, ScriptedEditor
from thinkedit.tools.errors import BackendError, BadInputError
from thinkedit.tools.types import EditRequest, EditResult, JudgeRequest, Verdict


@dataclass
class ImprovingThinker:
    """Score the first round 3/4 and any refined round 7/7, always proposing a new instruction."""

    name: str = "improving-thinker"
    calls: list[JudgeRequest] = field(default_factory=list)

    async def judge(self, request: JudgeRequest) -> Verdict:
        self.calls.append(request)
        first = request.current_instruction == request.original_instruction
        score = (3.0, 4.0) if first else (7.0, 7.0)
        return Verdict(semantic=score[0], quality=score[1], reasoning="scripted",
                       refined_instruction=request.current_instruction + " (refined)")


@dataclass
class AlternatingJudge:
    """Judge odd calls 4/4 and even calls 8/8 (with one item at a time: single 4, loop 8)."""

    name: str = "alternating-judge"
    calls: list[JudgeRequest] = field(default_factory=list)

    async def judge(self, request: JudgeRequest) -> Verdict:
        self.calls.append(request)
        score = 4.0 if len(self.calls) % 2 else 8.0
        return Verdict(semantic=score, quality=score, reasoning="judged", refined_instruction="none")


@dataclass
class CountingEditor(ScriptedEditor):
    """A scripted editor that fails on one instruction and tracks how many edits run at once."""

    fail_on: str = ""
    running: int = 0
    most: int = 0

    async def edit(self, request: EditRequest) -> EditResult:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            if self.fail_on and request.instruction.startswith(self.fail_on):
                raise BackendError("the editor rejected this one (scripted)")
            return await super().edit(request)
        finally:
            self.running -= 1


def settings(data_dir: Path) -> LoopSettings:
    return LoopSettings.model_validate({
        "editor": {"backend": "scripted", "model": "scripted"},
        "thinker": {"backend": "scripted", "model": "scripted"},
        "data_dir": str(data_dir), "max_rounds": 2,
    })


@pytest.fixture
def items(tmp_path: Path) -> list[BenchItem]:
    root = write_synthetic_benchmark(tmp_path / "bench", examples_dir=EXAMPLES, items=3)
    return load_benchmark("imgedit", root, cache_dir=tmp_path / "cache").items


def setup(data_dir: Path, out: Path, *, editor=None, checkpointer=None, concurrency=1, record=None):
    editor = editor or CountingEditor()
    judge_thinker = AlternatingJudge()
    runner = Runner(data_dir, checkpointer or memory_checkpointer(), backends=FakeBackends(editor, ImprovingThinker()),
                    retry=default_retry(max_attempts=2, initial_interval=0.01))
    plan = EvalPlan(bench="imgedit", out_dir=out, settings=settings(data_dir), judge=Judge(judge_thinker, name="judge-x"),
                    concurrency=concurrency, record_dir=record)
    return runner, plan, editor, judge_thinker


async def test_each_item_is_judged_after_its_first_round_and_after_the_loop(data_dir, tmp_path, items) -> None:
    out, record = tmp_path / "out", tmp_path / "recorded"
    runner, plan, editor, judge = setup(data_dir, out, record=record)
    seen: list[ItemOutcome] = []
    outcomes = await evaluate(items, plan, runner, on_outcome=seen.append)
    assert [o.status for o in outcomes] == ["done"] * 3 and len(seen) == 3
    assert len(editor.calls) == 6 and len(judge.calls) == 6  # two rounds each; round 1 and the best round judged
    single = read_results(results_path(out, "imgedit", "single"))
    loop = read_results(results_path(out, "imgedit", "loop"))
    assert [r["key"] for r in single] == [r["key"] for r in loop] == ["1", "2", "3"]
    assert {(r["round"], r["rounds"], r["overall"]) for r in single} == {(1, 1, 4.0)}
    assert {(r["round"], r["rounds"], r["stop_reason"], r["overall"]) for r in loop} == {(2, 2, "max_rounds", 8.0)}
    assert {r["thinker_overall"] for r in loop} == {7.0} and {r["judge"] for r in loop} == {"judge-x"}
    assert loop[0]["final_instruction"] == items[0].instruction + " (refined)"
    assert all((out / r["image"]).is_file() for r in single + loop)
    # The judge saw the item's instruction and the source, whatever the loop's instruction became.
    assert {c.original_instruction for c in judge.calls} == {i.instruction for i in items}
    trajectories = [data for _, data in read_trajectories(record)]
    assert sorted(t["item_key"] for t in trajectories) == ["1", "2", "3"]
    assert {t["task_type"] for t in trajectories} == {"add", "alter", "style"}
    assert all(len(t["rounds"]) == 2 and t["judge"]["loop"]["overall"] == 8.0 for t in trajectories)


async def test_a_rerun_skips_judged_items_without_editing(data_dir, tmp_path, items) -> None:
    out = tmp_path / "out"
    runner, plan, _, _ = setup(data_dir, out)
    await evaluate(items, plan, runner)
    runner, plan, editor, judge = setup(data_dir, out)
    outcomes = await evaluate(items, plan, runner)
    assert [o.status for o in outcomes] == ["skipped"] * 3
    assert editor.calls == [] and judge.calls == []
    assert len(results_path(out, "imgedit", "loop").read_text().splitlines()) == 3


async def test_an_interrupted_evaluation_resumes_where_it_stopped(data_dir, tmp_path, items) -> None:
    out, saver = tmp_path / "out", memory_checkpointer()
    runner, plan, editor, _ = setup(data_dir, out, checkpointer=saver, concurrency=2)
    task: asyncio.Task | None = None

    def stop_after_first(outcome: ItemOutcome) -> None:
        if outcome.status == "done" and task is not None:
            task.cancel()

    task = asyncio.create_task(evaluate(items, plan, runner, on_outcome=stop_after_first))
    with pytest.raises(asyncio.CancelledError):
        await task
    first = read_results(results_path(out, "imgedit", "loop"))
    assert len(first) == 1
    runner, plan, editor2, _ = setup(data_dir, out, checkpointer=saver, concurrency=2)
    outcomes = await evaluate(items, plan, runner)
    statuses = {o.item.key: o.status for o in outcomes}
    assert statuses[first[0]["key"]] == "skipped" and sorted(statuses.values()) == ["done", "done", "skipped"]
    done_first = next(i for i in items if i.key == first[0]["key"])
    assert not [c for c in editor2.calls if c.instruction.startswith(done_first.instruction)]
    assert len(editor2.calls) <= 4  # at most the two unfinished items' two rounds; an interrupted edit is redone
    lines = results_path(out, "imgedit", "loop").read_text().splitlines()
    assert sorted(json.loads(line)["key"] for line in lines) == ["1", "2", "3"]


async def test_a_failing_item_does_not_stop_the_others_and_is_retried_next_time(data_dir, tmp_path, items) -> None:
    out = tmp_path / "out"
    runner, plan, _, _ = setup(data_dir, out, editor=CountingEditor(fail_on=items[1].instruction))
    outcomes = await evaluate(items, plan, runner)
    assert [o.status for o in outcomes] == ["done", "failed", "done"]
    assert "rejected" in (outcomes[1].error or "")
    assert [r["key"] for r in read_results(results_path(out, "imgedit", "single"))] == ["1", "3"]
    runner, plan, _, _ = setup(data_dir, out)
    assert [o.status for o in await evaluate(items, plan, runner)] == ["skipped", "done", "skipped"]


async def test_concurrency_is_limited(data_dir, tmp_path, items) -> None:
    editor = CountingEditor(delay=0.05)
    runner, plan, _, _ = setup(data_dir, tmp_path / "out", editor=editor, concurrency=2)
    await evaluate(items, plan, runner)
    assert editor.most == 2


def test_an_output_directory_belongs_to_one_set_of_settings(tmp_path: Path) -> None:
    claim_out_dir(tmp_path, "gedit", {"loop": {"max_rounds": 5}, "judge": "gpt-4.1"})
    claim_out_dir(tmp_path, "gedit", {"loop": {"max_rounds": 5}, "judge": "gpt-4.1"})
    claim_out_dir(tmp_path, "kris", {"loop": {"max_rounds": 3}, "judge": "gpt-4.1"})
    with pytest.raises(BadInputError, match="loop differ"):
        claim_out_dir(tmp_path, "gedit", {"loop": {"max_rounds": 3}, "judge": "gpt-4.1"})


def test_run_ids_are_stable_per_output_directory_and_loop_settings(tmp_path: Path) -> None:
    loop = settings(tmp_path)
    assert eval_run_id("gedit", "en/k1", tmp_path, loop) == eval_run_id("gedit", "en/k1", tmp_path, loop)
    assert eval_run_id("gedit", "en/k1", tmp_path, loop) != eval_run_id("gedit", "en/k1", tmp_path / "other", loop)
    assert eval_run_id("gedit", "en/k1", tmp_path, loop) != eval_run_id("gedit", "en/k2", tmp_path, loop)
    # Other loop settings make other runs (an output dir deleted and evaluated again does not judge old ones) ...
    longer = loop.updated(max_rounds=loop.max_rounds + 1)
    assert eval_run_id("gedit", "en/k1", tmp_path, loop) != eval_run_id("gedit", "en/k1", tmp_path, longer)
    # ... while where the data lives does not.
    moved = loop.model_copy(update={"data_dir": str(tmp_path / "elsewhere")})
    assert eval_run_id("gedit", "en/k1", tmp_path, loop) == eval_run_id("gedit", "en/k1", tmp_path, moved)


async def test_an_out_dir_deleted_and_evaluated_with_other_settings_makes_new_runs(data_dir, tmp_path, items) -> None:
    import dataclasses
    import shutil

    out, saver = tmp_path / "out", memory_checkpointer()  # one data dir and checkpointer across both evaluations
    runner, plan, _, _ = setup(data_dir, out, checkpointer=saver)
    await evaluate(items[:1], plan, runner)
    assert read_results(results_path(out, "imgedit", "loop"))[0]["rounds"] == 2
    shutil.rmtree(out)  # what the refusal to mix settings tells a user to do
    runner, plan, editor, _ = setup(data_dir, out, checkpointer=saver)
    plan = dataclasses.replace(plan, settings=plan.settings.updated(max_rounds=3))
    await evaluate(items[:1], plan, runner)
    (loop,) = read_results(results_path(out, "imgedit", "loop"))
    assert loop["rounds"] == 3 and len(editor.calls) == 3  # run again with the new settings, not the old run judged


async def test_record_given_only_on_a_rerun_records_the_judged_items(data_dir, tmp_path, items) -> None:
    out, record, saver = tmp_path / "out", tmp_path / "recorded", memory_checkpointer()
    runner, plan, _, _ = setup(data_dir, out, checkpointer=saver)
    await evaluate(items, plan, runner)  # judged, not recorded
    runner, plan, editor, judge = setup(data_dir, out, checkpointer=saver, record=record)
    outcomes = await evaluate(items, plan, runner)
    assert [o.status for o in outcomes] == ["skipped"] * 3 and editor.calls == [] and judge.calls == []
    trajectories = [data for _, data in read_trajectories(record)]
    assert sorted(t["item_key"] for t in trajectories) == ["1", "2", "3"]
    assert all(t["judge"]["loop"]["overall"] == 8.0 and len(t["rounds"]) == 2 for t in trajectories)
