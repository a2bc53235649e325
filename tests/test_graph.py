"""The real graph, driven by scripted backends that record their calls."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from thinkedit.agent.checkpoint import memory_checkpointer
from thinkedit.agent.graph import default_retry
from thinkedit.agent.runs import Runner
from thinkedit.agent.settings import LoopSettings
from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts
from thinkedit.tools.errors import BadInputError, ThinkerOutputError, TransientBackendError
from thinkedit.tools.store import ArtifactStore


def make_settings(data_dir: Path, **overrides) -> LoopSettings:
    base = {
        "editor": {"backend": "scripted", "model": "scripted"},
        "thinker": {"backend": "scripted", "model": "scripted"},
        "data_dir": str(data_dir),
        "max_rounds": 5,
    }
    return LoopSettings.model_validate(base | overrides)


def make_runner(data_dir: Path, editor: ScriptedEditor, thinker: ScriptedThinker, checkpointer=None) -> Runner:
    return Runner(
        data_dir,
        checkpointer or memory_checkpointer(),
        backends=FakeBackends(editor, thinker),
        retry=default_retry(max_attempts=3, initial_interval=0.01),
    )


async def run(data_dir, photo, thinker, editor=None, instruction="make the cat wear a red hat", **overrides):
    editor = editor or ScriptedEditor()
    runner = make_runner(data_dir, editor, thinker)
    events: list[dict] = []
    record = runner.prepare(photo, instruction, make_settings(data_dir, **overrides))
    state = await runner.start(record, on_event=events.append)
    return state, editor, thinker, events, runner


@pytest.mark.parametrize(
    ("script", "rounds", "reason"),
    [
        ([(9, 9, "x")], 1, "threshold_met"),
        ([(3, 4, "add a red hat"), (5, 5, "ignored", True)], 2, "thinker_satisfied"),
        ([(3, 4, "add a red hat"), (4, 4, "add a red hat")], 2, "instruction_unchanged"),
        ([(3, 4, "")], 1, "instruction_unchanged"),
        ([(3, 4, "a"), (3, 4, "b"), (3, 4, "c")], 3, "max_rounds"),
    ],
)
async def test_every_stop_reason(data_dir, photo, script, rounds, reason) -> None:
    state, editor, thinker, _, _ = await run(data_dir, photo, ScriptedThinker(verdicts(*script)), max_rounds=3)
    assert state.status == "done"
    assert state.stop_reason == reason
    assert len(state.rounds) == rounds
    # Every round is critiqued, the last one too.
    assert len(editor.calls) == len(thinker.calls) == rounds
    assert all(r.verdict is not None for r in state.rounds)


async def test_refined_instruction_feeds_the_next_edit(data_dir, photo) -> None:
    script = verdicts((2, 8, "put a red hat on the cat"), (6, 8, "put a bright red hat on the cat's head"), (9, 9, "x"))
    state, editor, thinker, _, _ = await run(data_dir, photo, ScriptedThinker(script))
    assert [c.instruction for c in editor.calls] == [
        "make the cat wear a red hat",
        "put a red hat on the cat",
        "put a bright red hat on the cat's head",
    ]
    # The thinker always sees the user's original instruction and the one actually used.
    assert {c.original_instruction for c in thinker.calls} == {"make the cat wear a red hat"}
    assert [c.current_instruction for c in thinker.calls] == [c.instruction for c in editor.calls]


async def test_best_round_is_returned_by_default(data_dir, photo) -> None:
    script = verdicts((3, 3, "a"), (9, 7, "b"), (5, 5, "c"))
    state, *_ , runner = await run(data_dir, photo, ScriptedThinker(script), max_rounds=3)
    assert state.best_round == 2
    assert state.final_image == state.rounds[1].image
    last, *_ = await run(data_dir, photo, ScriptedThinker(script), max_rounds=3, selection="last")
    assert last.best_round == 3
    assert last.final_image == last.rounds[2].image


async def test_edits_start_from_source_by_default(data_dir, photo) -> None:
    script = verdicts((3, 3, "a"), (3, 3, "b"), (3, 3, "c"))
    state, editor, *_ = await run(data_dir, photo, ScriptedThinker(script), max_rounds=3)
    assert all(c.image.tobytes() == photo.tobytes() for c in editor.calls)


async def test_previous_chains_edits(data_dir, photo) -> None:
    script = verdicts((3, 3, "a"), (3, 3, "b"), (3, 3, "c"))
    state, editor, *_ , runner = await run(data_dir, photo, ScriptedThinker(script), max_rounds=3, edit_from="previous")
    assert editor.calls[0].image.tobytes() == photo.tobytes()
    for previous, call in zip(state.rounds, editor.calls[1:]):
        assert call.image.tobytes() == runner.store.get(previous.image).tobytes()


async def test_seed_policies(data_dir, photo) -> None:
    script = verdicts((3, 3, "a"), (3, 3, "b"), (3, 3, "c"))
    state, editor, *_ = await run(data_dir, photo, ScriptedThinker(script), max_rounds=3, seed=7)
    assert [c.seed for c in editor.calls] == [7, 7, 7]
    state, editor, *_ = await run(data_dir, photo, ScriptedThinker(script), max_rounds=3, seed=7, seed_policy="increment")
    assert [c.seed for c in editor.calls] == [7, 8, 9]
    assert [r.seed for r in state.rounds] == [7, 8, 9]


async def test_output_images_are_stored_by_reference(data_dir, photo) -> None:
    state, *_ , runner = await run(data_dir, photo, ScriptedThinker(verdicts((3, 3, "a"), (9, 9, "b"))))
    for r in state.rounds:
        assert Path(r.image.uri).is_file()
        assert r.image.size == photo.size
    assert runner.store.get(state.source).size == photo.size


async def test_progress_events(data_dir, photo) -> None:
    _, _, _, events, _ = await run(data_dir, photo, ScriptedThinker(verdicts((3, 3, "a"), (9, 9, "b"))))
    names = [e["event"] for e in events]
    assert names == ["round_started", "image_ready", "verdict"] * 2 + ["run_finished"]
    verdict_events = [e for e in events if e["event"] == "verdict"]
    assert [(e["round"], e["semantic"], e["quality"]) for e in verdict_events] == [(1, 3, 3), (2, 9, 9)]
    assert verdict_events[-1]["stop_reason"] == "threshold_met"
    assert all(e["run_id"] == events[0]["run_id"] for e in events)


async def test_retry_after_transient_editor_error(data_dir, photo) -> None:
    editor = ScriptedEditor(fail_first=2)
    state, *_ = await run(data_dir, photo, ScriptedThinker(verdicts((9, 9, "x"))), editor=editor)
    assert state.status == "done"
    assert len(editor.calls) == 3  # two transient failures, then success
    assert len(state.rounds) == 1


async def test_retries_give_up_with_the_error(data_dir, photo) -> None:
    editor = ScriptedEditor(fail_first=10)
    with pytest.raises(TransientBackendError, match="connection refused"):
        await run(data_dir, photo, ScriptedThinker(verdicts((9, 9, "x"))), editor=editor)
    assert len(editor.calls) == 3


async def test_unparseable_thinker_output_is_retried(data_dir, photo) -> None:
    thinker = ScriptedThinker(verdicts((9, 9, "x")), failures=[ThinkerOutputError("no <score> tag", "garbage")])
    state, *_ = await run(data_dir, photo, thinker)
    assert state.stop_reason == "threshold_met"
    assert len(thinker.calls) == 2


class CrashingEditor(ScriptedEditor):
    """Fail hard (not transient) on the given call, as a killed process would."""

    crash_on: int = 2

    async def edit(self, request):
        if len(self.calls) + 1 == self.crash_on:
            self.calls.append(request)
            raise RuntimeError("editor process died")
        return await super().edit(request)


async def test_resume_after_crash_between_rounds(data_dir, photo) -> None:
    checkpointer = memory_checkpointer()
    script = verdicts((3, 3, "a"), (4, 4, "b"), (9, 9, "c"))
    editor, thinker = CrashingEditor(), ScriptedThinker(script)
    runner = make_runner(data_dir, editor, thinker, checkpointer)
    record = runner.prepare(photo, "make it red", make_settings(data_dir))
    with pytest.raises(RuntimeError, match="editor process died"):
        await runner.start(record)
    assert runner.registry.load(record.run_id).status == "error"
    partial = await runner.state(record.run_id)
    assert [r.index for r in partial.rounds] == [1] and partial.rounds[0].verdict is not None

    # A new process: fresh backends, the same checkpoints.
    editor2, thinker2 = ScriptedEditor(), ScriptedThinker(script[1:])
    runner2 = make_runner(data_dir, editor2, thinker2, checkpointer)
    state = await runner2.resume(record.run_id)
    assert state.status == "done" and state.stop_reason == "threshold_met"
    assert [r.index for r in state.rounds] == [1, 2, 3]
    # Round 1 was not edited or critiqued again.
    assert [c.instruction for c in editor2.calls] == ["a", "b"]
    assert len(thinker2.calls) == 2
    assert runner2.registry.load(record.run_id).status == "done"


async def test_resume_of_finished_run_redoes_nothing(data_dir, photo) -> None:
    checkpointer = memory_checkpointer()
    editor, thinker = ScriptedEditor(), ScriptedThinker(verdicts((9, 9, "x")))
    runner = make_runner(data_dir, editor, thinker, checkpointer)
    record = runner.prepare(photo, "make it red", make_settings(data_dir))
    first = await runner.start(record)
    again = await runner.resume(record.run_id)
    assert again == first
    assert len(editor.calls) == 1


async def test_bad_inputs(data_dir, photo) -> None:
    runner = make_runner(data_dir, ScriptedEditor(), ScriptedThinker(verdicts((9, 9, "x"))))
    with pytest.raises(BadInputError, match="instruction is empty"):
        runner.prepare(photo, "  ", make_settings(data_dir))
    with pytest.raises(BadInputError, match="image not found"):
        runner.prepare(data_dir / "missing.png", "x", make_settings(data_dir))
    with pytest.raises(BadInputError, match="unknown run id"):
        await runner.resume("nope")
    with pytest.raises(ValueError, match="max_rounds"):
        make_settings(data_dir, max_rounds=0)


async def test_review_interrupt_and_each_decision(data_dir, photo) -> None:
    script = verdicts((3, 3, "proposed one"), (4, 4, "proposed two"), (5, 5, "proposed three"), (6, 6, "proposed four"))
    editor, thinker = ScriptedEditor(), ScriptedThinker(script)
    runner = make_runner(data_dir, editor, thinker)
    record = runner.prepare(photo, "make it red", make_settings(data_dir, review=True, max_rounds=5))
    events: list[dict] = []
    paused = await runner.start(record, on_event=events.append)
    assert paused.status == "running" and len(paused.rounds) == 1
    assert runner.registry.load(record.run_id).status == "awaiting_review"
    pending = await runner.pending_review(record.run_id)
    assert pending["proposed_instruction"] == "proposed one" and pending["semantic"] == 3
    assert events[-1]["event"] == "awaiting_review"
    with pytest.raises(BadInputError, match="awaiting review"):
        await runner.resume(record.run_id)

    assert pending["decisions"] == ["approve", "edit", "stop"]

    await runner.resume(record.run_id, review="approve")
    assert editor.calls[-1].instruction == "proposed one"
    await runner.resume(record.run_id, review={"decision": "edit", "instruction": "my own words"})
    assert editor.calls[-1].instruction == "my own words"
    await runner.resume(record.run_id, review={"action": "edit", "instruction": "older words"})  # the old vocabulary
    assert editor.calls[-1].instruction == "older words"
    final = await runner.resume(record.run_id, review={"decision": "stop"})
    assert final.status == "done" and final.stop_reason == "reviewer_stopped"
    assert len(final.rounds) == 4
    assert runner.registry.load(record.run_id).status == "done"


async def test_a_review_answer_resumes_only_the_pause_it_was_given_for(data_dir, photo) -> None:
    script = verdicts((3, 3, "proposed one"), (4, 4, "proposed two"), (5, 5, "proposed three"))
    editor = ScriptedEditor()
    runner = make_runner(data_dir, editor, ScriptedThinker(script))
    record = runner.prepare(photo, "make it red", make_settings(data_dir, review=True, max_rounds=5))
    await runner.start(record)
    assert (await runner.pending_review(record.run_id))["round"] == 1
    await runner.resume(record.run_id, review="approve", pending_round=1)  # someone answers round 1 ...
    assert (await runner.pending_review(record.run_id))["round"] == 2
    with pytest.raises(BadInputError, match="now awaits review of round 2, not round 1: the answer was not applied"):
        await runner.resume(record.run_id, review="stop", pending_round=1)  # ... and a late answer to it is refused
    assert len(editor.calls) == 2 and runner.registry.load(record.run_id).status == "awaiting_review"

    cancelled = runner.registry.load(record.run_id)
    cancelled.status, cancelled.error = "cancelled", "cancelled"
    runner.registry.save(cancelled)
    with pytest.raises(BadInputError, match="is cancelled: the review answer was not applied"):
        await runner.resume(record.run_id, review="approve")
    assert len(editor.calls) == 2 and runner.registry.load(record.run_id).status == "cancelled"  # left as it was


async def test_best_of_k_keeps_the_best_candidate(data_dir, photo) -> None:
    # Round 1: three candidates scored 3, 7, 5 -> the second (seed 11) wins; round 2: 9 for the first.
    script = verdicts((3, 3, "a"), (7, 7, "b"), (5, 5, "c"), (9, 9, "x"), (2, 2, "y"), (2, 2, "z"))
    state, editor, thinker, events, runner = await run(
        data_dir, photo, ScriptedThinker(script), seed=10, candidates=3, max_rounds=3
    )
    assert [c.num_images for c in editor.calls] == [3, 3]  # one batched call per round
    assert len(thinker.calls) == 6  # every candidate judged
    first = state.rounds[0]
    assert [c.seed for c in first.candidates] == [10, 11, 12]
    assert [c.verdict.semantic for c in first.candidates] == [3, 7, 5]
    assert first.seed == 11 and first.image == first.candidates[1].image
    assert first.verdict.semantic == 7
    assert editor.calls[1].instruction == "b"  # the winner's refinement drives the next round
    assert state.rounds[1].verdict.semantic == 9 and state.stop_reason == "threshold_met"
    assert len({c.image.sha256 for c in first.candidates}) == 3
    verdict_event = next(e for e in events if e["event"] == "verdict")
    assert verdict_event["best_candidate"] == 1 and len(verdict_event["candidate_overall"]) == 3


async def test_a_token_budget_stops_before_the_round_that_would_exceed_it(data_dir, photo) -> None:
    script = [v.model_copy(update={"input_tokens": 1000, "output_tokens": 100})
              for v in verdicts((3, 4, "a"), (6, 6, "b"), (4, 4, "c"), (5, 5, "d"))]
    # 1100 tokens a round: two rounds (2200) fit 3000, a third (3300) would not.
    state, editor, thinker, events, _ = await run(data_dir, photo, ScriptedThinker(script), budget={"tokens": 3000})
    assert (state.status, state.stop_reason, len(state.rounds)) == ("done", "budget", 2)
    assert state.best_round == 2  # the best round so far is returned
    assert len(editor.calls) == len(thinker.calls) == 2
    assert [r.usage.thinker_input_tokens for r in state.rounds] == [1000, 1000]
    assert all(r.usage.images_edited == 1 and r.usage.critiques == 1 for r in state.rounds)
    assert [e for e in events if e.get("event") == "verdict"][-1]["stop_reason"] == "budget"


async def test_a_dollar_budget_uses_the_profiles_prices(data_dir, photo) -> None:
    script = [v.model_copy(update={"input_tokens": 10_000, "output_tokens": 0})
              for v in verdicts((3, 4, "a"), (4, 4, "b"), (4, 5, "c"))]
    pricing = {"scripted": {"per_image": 0.01, "input_per_mtok": 1.0}}  # editor and thinker are both "scripted"
    state, *_ = await run(data_dir, photo, ScriptedThinker(script), pricing=pricing, budget={"usd": 0.05})
    # 0.01 (image) + 0.01 (10k tokens at $1/M) = 0.02 a round: 0.04 after two, a third would make 0.06.
    assert (state.stop_reason, len(state.rounds)) == ("budget", 2)
    assert [r.usage.cost_usd for r in state.rounds] == [pytest.approx(0.02), pytest.approx(0.02)]


async def test_a_budget_from_the_runs_input_overrides(data_dir, photo) -> None:
    from thinkedit.agent.settings import SettingsInput

    overrides = SettingsInput(budget={"tokens": 1500})
    script = [v.model_copy(update={"input_tokens": 1000}) for v in verdicts((3, 4, "a"), (4, 4, "b"))]
    runner = make_runner(data_dir, ScriptedEditor(), ScriptedThinker(script))
    values = await runner.graph.ainvoke(
        {"image": str(photo_path(data_dir, photo)), "instruction": "x", "overrides": overrides},
        {"configurable": {"thread_id": "budget-input"}},
        context=make_settings(data_dir),
    )
    assert (values["stop_reason"], len(values["rounds"])) == ("budget", 1)


def photo_path(data_dir: Path, photo: Image.Image) -> Path:
    path = data_dir / "photo.png"
    photo.save(path)
    return path


@pytest.mark.parametrize(("bad", "why"), [
    ("edit", "decision 'edit' needs an instruction"),
    ({"decision": "approve", "instruction": "a blue hat"}, "decision 'approve' takes no instruction"),
    ({"decision": "maybe"}, "is not 'approve', 'stop', a new instruction"),
])
async def test_an_answer_the_graph_cannot_take_is_asked_again_not_stuck(data_dir, photo, bad, why) -> None:
    """LangGraph keeps every answer given to a pause: a refused one must not be replayed on each later resume."""
    script = verdicts((3, 3, "proposed one"), (4, 4, "proposed two"), (5, 5, "proposed three"))
    editor = ScriptedEditor()
    runner = make_runner(data_dir, editor, ScriptedThinker(script))
    record = runner.prepare(photo, "make it red", make_settings(data_dir, review=True, max_rounds=5))
    await runner.start(record)
    again = await runner.resume(record.run_id, review=bad)  # as Studio or the SDK would send it, unchecked
    assert again.status == "running" and len(editor.calls) == 1
    pending = await runner.pending_review(record.run_id)
    assert pending["round"] == 1 and why in pending["error"]  # asked again, saying why
    assert runner.registry.load(record.run_id).status == "awaiting_review"
    await runner.resume(record.run_id, review={"decision": "edit", "instruction": "my own words"})
    assert editor.calls[-1].instruction == "my own words" and len(editor.calls) == 2
    assert "error" not in await runner.pending_review(record.run_id)  # the next round's question is a fresh one
    final = await runner.resume(record.run_id, review="stop")
    assert final.status == "done" and final.stop_reason == "reviewer_stopped" and len(final.rounds) == 2


async def test_a_resume_writes_to_the_store_it_was_given_not_the_one_the_record_names(photo, tmp_path) -> None:
    """A shared store reached under another path (another machine's mount point) gets the resumed run's images."""
    script = verdicts((3, 3, "proposed one"), (4, 4, "proposed two"), (5, 5, "proposed three"))
    saver, editor = memory_checkpointer(), ScriptedEditor()

    def runner(data_dir: Path, store: Path) -> Runner:
        return Runner(data_dir, saver, FakeBackends(editor, ScriptedThinker(script)), artifacts=str(store),
                      retry=default_retry(initial_interval=0.01))

    first = runner(tmp_path / "a", tmp_path / "mnt-a")
    record = first.prepare(photo, "make it red", make_settings(tmp_path / "a", review=True, max_rounds=3))
    await first.start(record)
    ArtifactStore.flush()
    (tmp_path / "mnt-a").rename(tmp_path / "share")  # the same store, reached elsewhere
    second = runner(tmp_path / "b", tmp_path / "share")
    resumed = await second.resume(record.run_id, review="approve")
    ArtifactStore.flush()
    assert len(resumed.rounds) == 2 and not (tmp_path / "mnt-a").exists()  # nothing written where the record said
    assert all(second.store.read_bytes(r.image) for r in resumed.rounds)
    assert second.registry.load(record.run_id).settings.artifacts_url == str(tmp_path / "share")


async def test_a_run_looked_at_before_its_input_is_checkpointed_has_no_state_yet(data_dir, photo) -> None:
    """The first checkpoint of a starting run holds only the channels' defaults: no state, not a broken one."""
    from thinkedit.agent.view import read_run

    runner = make_runner(data_dir, ScriptedEditor(), ScriptedThinker(verdicts((9, 9, "x"))))
    record = runner.prepare(photo, "make it red", make_settings(data_dir))
    from types import SimpleNamespace

    async def first_checkpoint(config, *args, **kwargs):  # what LangGraph holds as the run starts (seen live)
        return SimpleNamespace(values={"rounds": []}, interrupts=())

    runner.graph.aget_state = first_checkpoint
    assert await runner.state(record.run_id) is None
    assert (await read_run(runner, record.run_id)).state is None
