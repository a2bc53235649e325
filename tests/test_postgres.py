"""Runs checkpointed in a real PostgreSQL server: the graph, and a CLI run resumed by another process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from thinkedit.agent.checkpoint import open_checkpointer
from thinkedit.agent.graph import default_retry
from thinkedit.agent.runs import Runner
from tests.cli import check_resumed_after_round_1, edit_killed_at, thinkedit, tiny_profile_that_never_stops_early
from tests.conftest import EXAMPLES
from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts
from tests.postgres import REQUIRE_ENV, find_bin_dir, postgres_server
from tests.test_graph import make_settings


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """Start PostgreSQL once per session; skip (or fail, with THINKEDIT_REQUIRE_POSTGRES=1) without it."""
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
    with postgres_server() as url:
        yield url


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
