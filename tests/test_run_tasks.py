"""The background runs both long-lived servers share (``agent.tasks.RunTasks``): the gallery's and the MCP server's."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts
from tests.mcp_support import CHELSEA
from tests.test_graph import make_settings
from thinkedit.agent.checkpoint import memory_checkpointer
from thinkedit.agent.runs import RunRecord, RunRegistry, Runner
from thinkedit.servers.mcp.live_runs import RunJobs
from thinkedit.servers.ui.live_runs import GalleryJobs


def runner_with(data_dir: Path, editor: ScriptedEditor) -> Runner:
    return Runner(data_dir, memory_checkpointer(),
                  backends=FakeBackends(editor, ScriptedThinker(verdicts((9, 9, "same")))))


async def test_gallery_runs_write_their_files_and_leave_the_task_map(data_dir: Path, tmp_path: Path) -> None:
    runner = runner_with(data_dir, ScriptedEditor())
    jobs = GalleryJobs(runner, data_dir / "outputs")
    records = [runner.prepare(CHELSEA, "add a hat", make_settings(data_dir, max_rounds=1)) for _ in range(3)]
    records[0].out_dir = str(tmp_path / "chosen")  # a run started with its own output folder keeps it
    changed = [asyncio.ensure_future(jobs.wait_change(r.run_id, 30)) for r in records]
    for record in records:
        jobs.start(record)
    assert jobs.live_count == 3 and all(jobs.is_live(r.run_id) for r in records)
    await asyncio.wait_for(asyncio.gather(*changed), 30)  # each follower is woken
    while jobs.live_count:
        await asyncio.sleep(0.01)
    assert [runner.registry.load(r.run_id).status for r in records] == ["done"] * 3
    assert (tmp_path / "chosen" / "report.html").is_file()
    assert all((data_dir / "outputs" / r.run_id / "report.html").is_file() for r in records[1:])
    assert all(jobs.progress(r.run_id) is None for r in records)  # a finished run takes its progress line along


async def test_a_run_paused_for_review_keeps_its_progress_line_until_it_ends(data_dir: Path) -> None:
    runner = Runner(data_dir, memory_checkpointer(),  # low scores: the loop goes on, so the reviewer is asked
                    backends=FakeBackends(ScriptedEditor(), ScriptedThinker(verdicts((2, 2, "a bigger hat")))))
    jobs = GalleryJobs(runner, data_dir / "outputs")
    record = runner.prepare(CHELSEA, "add a hat", make_settings(data_dir, max_rounds=3, review=True))
    jobs.start(record)
    while jobs.live_count:
        await asyncio.sleep(0.01)
    assert runner.registry.load(record.run_id).status == "awaiting_review"
    line = jobs.progress(record.run_id)
    assert line, "the page shows the paused run's last line beside the review form"
    jobs.review(runner.registry.load(record.run_id), "stop")
    while jobs.live_count:
        await asyncio.sleep(0.01)
    assert runner.registry.load(record.run_id).status == "done"
    assert jobs.progress(record.run_id) is None


async def test_closing_marks_live_runs_interrupted_with_how_to_continue(data_dir: Path) -> None:
    for jobs_class, hint in ((GalleryJobs, "thinkedit resume {run_id}"), (RunJobs, "get_run resumes it")):
        runner = runner_with(data_dir, ScriptedEditor(delay=30))
        jobs = jobs_class(runner, data_dir / "outputs")
        record = runner.prepare(CHELSEA, "add a hat", make_settings(data_dir, max_rounds=1))
        started = jobs.start(record)
        if started is not None:
            await started
        while runner.registry.load(record.run_id).status != "running":
            await asyncio.sleep(0.01)
        await asyncio.wait_for(jobs.close(), 10)
        saved = runner.registry.load(record.run_id)
        assert jobs.live_count == 0 and saved.status == "running"
        assert saved.error is not None and hint.format(run_id=record.run_id) in saved.error


async def test_a_record_that_cannot_be_written_at_close_leaves_the_others_written(data_dir: Path, monkeypatch,
                                                                                   caplog) -> None:
    runner = runner_with(data_dir, ScriptedEditor(delay=30))
    jobs = RunJobs(runner, data_dir / "outputs")
    records = [runner.prepare(CHELSEA, f"add a hat {i}", make_settings(data_dir, max_rounds=1)) for i in range(2)]
    for record in records:
        await jobs.start(record)
    for record in records:
        while runner.registry.load(record.run_id).status != "running":
            await asyncio.sleep(0.01)
        runner.registry.flush(record.run_id)
    lost, kept = records
    write = RunRegistry._write

    def full(self, key: str, text: str) -> None:
        if lost.run_id in key:
            raise OSError("No space left on device")
        write(self, key, text)

    monkeypatch.setattr(RunRegistry, "_write", full)
    with caplog.at_level(logging.ERROR, logger="thinkedit.agent.tasks"):
        await asyncio.wait_for(jobs.close(), 10)  # does not raise: shutdown goes on
    assert jobs.live_count == 0
    assert f"run {lost.run_id}: its interrupted record was not written" in caplog.text
    on_disk = RunRecord.model_validate_json((data_dir / "runs" / f"{kept.run_id}.json").read_text())
    assert on_disk.status == "running" and "get_run resumes it" in (on_disk.error or "")
    monkeypatch.undo()
    runner.registry.save(runner.registry.load(lost.run_id))  # mended, so that no later test hears of it
    runner.registry.flush(lost.run_id)


async def test_a_run_the_gallery_stops_following_keeps_nothing_behind(data_dir: Path) -> None:
    runner = runner_with(data_dir, ScriptedEditor())
    jobs = GalleryJobs(runner, data_dir / "outputs")
    await jobs.wait_change("not-live", 0.01)  # a page followed a run that is not running, then left
    both = [asyncio.ensure_future(jobs.wait_change("watched", 0.2)) for _ in range(2)]
    await asyncio.sleep(0.05)
    late = asyncio.ensure_future(jobs.wait_change("watched", 5))
    await asyncio.sleep(0.3)  # the first two time out; the third still waits on the same event
    assert all(task.done() for task in both) and not late.done()
    jobs.changed("watched")  # an event of the run: the follower that stayed hears it
    await asyncio.wait_for(late, 1)
    assert jobs._changed == {} and jobs._watchers == {}  # noqa: SLF001


async def test_a_run_cancelled_as_a_step_ends_resumes_to_its_end(tmp_path: Path) -> None:
    """A step's update and its route are written together: cancelled between the two, a run could not go on.

    The cancel lands a few event-loop turns after round 1's verdict, while the critique's task is ending; each
    try is a fresh run (on SQLite, as a server keeps them), cancelled and then resumed twice.
    """
    import contextlib

    for attempt in range(6):
        data = tmp_path / f"data-{attempt}"
        backends = FakeBackends(ScriptedEditor(), ScriptedThinker(verdicts((2, 2, "a"), (2, 2, "b"), (2, 2, "c"))))
        async with Runner.open(data, backends=backends) as runner:
            record = runner.prepare(CHELSEA, "add a hat", make_settings(data, max_rounds=3))
            task: asyncio.Future = asyncio.Future()

            async def cancel_soon() -> None:
                for _ in range(2):
                    await asyncio.sleep(0)
                task.cancel()

            def on_event(event: dict) -> None:
                if event["event"] == "verdict" and event["round"] == 1:
                    asyncio.ensure_future(cancel_soon())

            task = asyncio.ensure_future(runner.start(record, on_event=on_event))
            with contextlib.suppress(asyncio.CancelledError):
                await task
            assert runner.registry.load(record.run_id).status == "cancelled"
            state = await runner.resume(record.run_id)
            assert state is not None and state.status == "done" and len(state.rounds) == 3, (attempt, state)
            assert runner.registry.load(record.run_id).status == "done"


async def test_a_cancel_is_kept_wherever_it_lands(data_dir: Path) -> None:
    """Before the run's task has run, or while it waits for the run's lock: the Runner records no cancel there."""
    runner = runner_with(data_dir, ScriptedEditor())
    jobs = RunJobs(runner, data_dir / "outputs")
    record = runner.prepare(CHELSEA, "add a hat", make_settings(data_dir, max_rounds=3))
    await jobs.start(record)
    assert (await jobs.cancel_run(record.run_id)).status == "cancelled"  # its task had not run yet
    assert runner.registry.load(record.run_id).status == "cancelled" and not jobs.is_live(record.run_id)

    waiting = runner.prepare(CHELSEA, "add a hat", make_settings(data_dir, max_rounds=3))
    other = type(runner.locks)(runner.locks.root)  # another process holding the run's lock, about to let go
    await other.acquire(waiting.run_id)
    gallery = GalleryJobs(runner, data_dir / "outputs")
    gallery.start(waiting)
    await asyncio.sleep(0.2)
    try:
        assert (await gallery.cancel_run(waiting.run_id)).status == "cancelled"
    finally:
        await other.release(waiting.run_id)
    assert runner.registry.load(waiting.run_id).status == "cancelled"


async def test_closing_while_a_finished_runs_files_are_written_leaves_it_done(data_dir: Path, monkeypatch) -> None:
    import thinkedit.agent.tasks as tasks

    def slow_outputs(*args: object) -> object:
        import time

        time.sleep(0.5)  # the window in which a server may be stopped
        return write_outputs(*args)

    write_outputs = tasks.write_outputs
    monkeypatch.setattr(tasks, "write_outputs", slow_outputs)
    runner = runner_with(data_dir, ScriptedEditor())
    jobs = GalleryJobs(runner, data_dir / "outputs")
    record = runner.prepare(CHELSEA, "add a hat", make_settings(data_dir, max_rounds=1))
    jobs.start(record)
    while runner.registry.load(record.run_id).status != "done":
        await asyncio.sleep(0.01)
    assert jobs.is_live(record.run_id)  # writing its files
    await asyncio.wait_for(jobs.close(), 10)
    saved = runner.registry.load(record.run_id)
    assert saved.status == "done" and saved.error is None


async def test_a_run_stopped_before_its_review_answer_is_saved_awaits_review_again(data_dir: Path) -> None:
    """The pause is still the checkpoint's: the record says so, and every surface that answers reviews takes it."""
    from thinkedit.agent.review import review_answer
    from thinkedit.tools.errors import BadInputError

    runner = Runner(data_dir, memory_checkpointer(),
                    backends=FakeBackends(ScriptedEditor(), ScriptedThinker(verdicts((2, 2, "a"), (2, 2, "b")))))
    jobs = RunJobs(runner, data_dir / "outputs")
    record = runner.prepare(CHELSEA, "add a hat", make_settings(data_dir, max_rounds=3, review=True))
    await jobs.start(record)
    while runner.registry.load(record.run_id).status != "awaiting_review" or jobs.is_live(record.run_id):
        await asyncio.sleep(0.01)
    await jobs.resume(record.run_id, review=review_answer("approve"), pending_round=1)
    await jobs.close()  # the server stops before the answer's step is saved (its task has not run yet)
    saved = runner.registry.load(record.run_id)
    assert saved.status == "awaiting_review" and saved.error is None and jobs.awaits_review(record.run_id)

    saved.status = "running"  # as a process killed between saving the pause and its record leaves it
    runner.registry.save(saved)
    with pytest.raises(BadInputError, match="awaiting review"):
        await runner.resume(record.run_id)  # what get_run's resume does: the record is put right
    assert runner.registry.load(record.run_id).status == "awaiting_review"


async def test_a_run_that_fails_keeps_what_it_spent_in_its_record(data_dir: Path) -> None:
    """``thinkedit runs`` reads the record: a failed or cancelled run's cost is what its rounds spent, not '-'."""
    from thinkedit.tools.errors import BackendError

    thinker = ScriptedThinker(verdicts((2, 2, "a"), (2, 2, "b")))
    runner = Runner(data_dir, memory_checkpointer(), backends=FakeBackends(ScriptedEditor(), thinker))
    record = runner.prepare(CHELSEA, "add a hat", make_settings(data_dir, max_rounds=3))

    def on_event(event: dict) -> None:
        if event["event"] == "verdict" and event["round"] == 1:
            thinker.failures.append(BackendError("the thinker's key was revoked"))  # round 2's critique fails

    with pytest.raises(BackendError):
        await runner.start(record, on_event=on_event)
    saved = runner.registry.load(record.run_id)
    assert saved.status == "error" and saved.usage is not None
    assert saved.usage["edit_calls"] == 2 and saved.usage["critiques"] == 1
