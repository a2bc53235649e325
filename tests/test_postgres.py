"""Runs checkpointed in a real PostgreSQL server: the graph, and a CLI run resumed by another process."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from thinkedit.agent.checkpoint import CheckpointSaveError, open_checkpointer
from thinkedit.agent.graph import default_retry
from thinkedit.agent.runs import Runner
from tests.cli import check_resumed_after_round_1, edit_killed_at, thinkedit, tiny_profile_that_never_stops_early
from tests.conftest import EXAMPLES
from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts
from thinkedit.tools.types import EditRequest, EditResult
from tests.postgres import PASSWORD, REQUIRE_ENV, PostgresCluster, find_bin_dir, postgres_cluster, postgres_server
from tests.test_graph import make_settings


def require_postgres() -> None:
    """Skip (or fail, with THINKEDIT_REQUIRE_POSTGRES=1) when PostgreSQL or the postgres extra is missing."""
    missing = None
    if find_bin_dir() is None:
        missing = "PostgreSQL is not installed (apt-get install postgresql)"
    else:
        try:
            import langgraph.checkpoint.postgres  # noqa: F401
            import psycopg  # noqa: F401
        except ModuleNotFoundError as exc:
            missing = f"the postgres extra is not installed ({exc.name}): pip install 'thinkedit[postgres]'"
    if missing:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{missing}, and {REQUIRE_ENV}=1")
        pytest.skip(missing)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """Start PostgreSQL once per session."""
    require_postgres()
    with postgres_server() as url:
        yield url


@pytest.fixture
def pg_cluster() -> Iterator[PostgresCluster]:
    """Start a PostgreSQL of the test's own, which it may stop and start again."""
    require_postgres()
    with postgres_cluster() as cluster:
        yield cluster


async def test_graph_checkpoints_in_postgres(pg_url: str, photo: Image.Image, tmp_path: Path) -> None:
    thinker = ScriptedThinker(verdicts((3, 4, "add a red hat"), (9, 9, "done")))
    async with open_checkpointer(pg_url) as saver:
        runner = Runner(tmp_path / "a", saver, backends=FakeBackends(ScriptedEditor(), thinker),
                        retry=default_retry(max_attempts=2, initial_interval=0.01))
        record = runner.prepare(photo, "add a hat", make_settings(tmp_path / "a"))
        state = await runner.start(record)
    assert state is not None and state.status == "done" and len(state.rounds) == 2
    # A new connection (a new process, in effect) reads the same checkpointed state back.
    async with open_checkpointer(pg_url) as saver:
        assert await Runner(tmp_path / "a", saver).state(record.run_id) == state
        history = [c async for c in saver.alist({"configurable": {"thread_id": record.run_id}})]
    assert len(history) > 4


@pytest.mark.slow
def test_cli_run_resumes_in_another_process_and_data_dir(pg_url: str, tmp_path: Path) -> None:
    shared = tmp_path / "shared-artifacts"
    storage = ["--checkpoints", pg_url, "--artifacts", f"file://{shared}"]
    long_profile = tiny_profile_that_never_stops_early(tmp_path)  # 3 full rounds
    first_dir, second_dir, out = tmp_path / "machine-a", tmp_path / "machine-b", tmp_path / "out"
    run_id, _ = edit_killed_at("round 2 · editing", str(EXAMPLES / "coffee.png"), "make the coffee green",
                               "--profile", str(long_profile), "--max-rounds", "3", "--out", str(out), *storage,
                               data_dir=first_dir)
    assert not (first_dir / "checkpoints.sqlite").exists()

    # Another machine: its own data dir, the same checkpointer and store URLs.
    listing = thinkedit("runs", *storage, data_dir=second_dir)
    assert any(line.startswith(run_id) and "running" in line for line in listing.stdout.splitlines()), listing
    assert "no runs" in thinkedit("runs", data_dir=second_dir).stdout  # its own registry is empty

    resumed = thinkedit("resume", run_id, *storage, data_dir=second_dir)
    check_resumed_after_round_1(resumed, out)
    assert not (second_dir / "artifacts").exists() and any(shared.glob("*/*.png"))
    listing = thinkedit("runs", *storage, data_dir=second_dir)
    assert any(line.startswith(run_id) and "done" in line for line in listing.stdout.splitlines()), listing


@dataclass
class EditorThatLosesTheDatabase(ScriptedEditor):
    """Stop the checkpoint database during one edit, as a crashed database host would."""

    cluster: PostgresCluster | None = None
    stop_at_call: int = 2

    async def edit(self, request: EditRequest) -> EditResult:
        if len(self.calls) + 1 == self.stop_at_call and self.cluster is not None:
            await asyncio.to_thread(self.cluster.stop)
        return await super().edit(request)


@pytest.mark.timeout(240)  # the old behaviour hung for minutes: a hang fails here
async def test_a_database_outage_stops_the_run_at_the_next_save_and_resume_redoes_one_round(
    pg_cluster: PostgresCluster, photo: Image.Image, tmp_path: Path
) -> None:
    thinker = ScriptedThinker(verdicts((3, 4, "add a red hat"), (5, 5, "make the hat bigger"), (9, 9, "done")))
    editor = EditorThatLosesTheDatabase(cluster=pg_cluster, stop_at_call=2)
    async with open_checkpointer(pg_cluster.url) as saver:
        runner = Runner(tmp_path, saver, backends=FakeBackends(editor, thinker),
                        retry=default_retry(max_attempts=2, initial_interval=0.01))
        record = runner.prepare(photo, "add a hat", make_settings(tmp_path, max_rounds=4))
        with pytest.raises(CheckpointSaveError) as stopped:
            await runner.start(record)
    message = str(stopped.value)
    assert f"thinkedit:***@127.0.0.1:{pg_cluster.port}/postgres" in message and PASSWORD not in message, message
    assert len(editor.calls) == 2  # round 2's saves failed: no round 3 was edited
    assert len(thinker.calls) <= 2
    stored = runner.registry.load(record.run_id)
    assert stored.status == "error" and "CheckpointSaveError" in stored.error and PASSWORD not in stored.error

    pg_cluster.start()  # the database is back: the run resumes from round 1, the last one saved
    again_editor = ScriptedEditor()
    again_thinker = ScriptedThinker(verdicts((5, 5, "make the hat bigger"), (9, 9, "done")))
    async with open_checkpointer(pg_cluster.url) as saver:
        state = await Runner(tmp_path, saver, backends=FakeBackends(again_editor, again_thinker)).resume(record.run_id)
    assert state is not None and state.status == "done" and len(state.rounds) == 3
    assert len(again_editor.calls) == 2  # rounds 2 (the one not saved) and 3: round 1 was not redone
    assert state.rounds[0].instruction == "add a hat" and state.rounds[1].instruction == "add a red hat"


@pytest.mark.timeout(240)
async def test_a_run_whose_last_round_could_not_be_saved_never_reports_itself_done(
    pg_cluster: PostgresCluster, photo: Image.Image, tmp_path: Path
) -> None:
    thinker = ScriptedThinker(verdicts((3, 4, "add a red hat"), (9, 9, "done")))  # round 2 is the last
    editor = EditorThatLosesTheDatabase(cluster=pg_cluster, stop_at_call=2)
    events: list[dict] = []
    async with open_checkpointer(pg_cluster.url) as saver:
        runner = Runner(tmp_path, saver, backends=FakeBackends(editor, thinker))
        record = runner.prepare(photo, "add a hat", make_settings(tmp_path, max_rounds=4))
        with pytest.raises(CheckpointSaveError):
            await runner.start(record, on_event=events.append)
    assert [e["round"] for e in events if e["event"] == "image_ready"] == [1, 2]
    assert not [e for e in events if e["event"] == "run_finished"]  # the CLI would have said "done · chose round"
    assert runner.registry.load(record.run_id).status == "error"
