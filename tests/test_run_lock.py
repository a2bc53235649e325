"""One driver per run: the Runner's lock, for the CLI, the MCP server and embeddings; in PostgreSQL too (issue 13)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from thinkedit.agent.checkpoint import memory_checkpointer, open_checkpointer
from thinkedit.agent.locks import FileRunLocks, PostgresRunLocks, RunBusyError
from thinkedit.agent.runs import Runner
from tests.cli import ROOT, cli_env, edit_killed_at, tiny_profile_that_never_stops_early
from tests.conftest import EXAMPLES
from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts
from tests.test_graph import make_settings
from tests.test_postgres import pg_url  # noqa: F401 - the session's PostgreSQL server

SCRIPT = verdicts((3, 4, "add a hat"), (4, 4, "add a red hat"), (5, 5, "add a big red hat"))


def slow_runner(data_dir: Path, saver=None, **kwargs) -> Runner:  # type: ignore[no-untyped-def]
    backends = FakeBackends(ScriptedEditor(delay=0.3), ScriptedThinker(list(SCRIPT)))
    return Runner(data_dir, saver or memory_checkpointer(), backends=backends, **kwargs)


async def test_file_locks_refuse_a_second_holder_and_name_the_first(tmp_path: Path) -> None:
    first, second = FileRunLocks(tmp_path), FileRunLocks(tmp_path, grace_s=0.2)
    await first.acquire("r1")
    with pytest.raises(RunBusyError, match=f"thinkedit pid {os.getpid()} on "):
        await second.acquire("r1")
    assert (await second.holder("r1") or "").startswith(f"thinkedit pid {os.getpid()}")
    assert await first.holder("r1") is None  # its own lock is not "someone else"
    await first.release("r1")
    await second.acquire("r1")
    await second.release("r1")


async def test_a_second_runner_cannot_drive_a_run_the_first_drives(tmp_path: Path, photo: Image.Image) -> None:
    locks_dir = tmp_path / "locks"
    a = slow_runner(tmp_path / "data", locks=FileRunLocks(locks_dir))
    b = Runner(tmp_path / "data", a.graph.checkpointer, backends=FakeBackends(ScriptedEditor(), ScriptedThinker(list(SCRIPT))),
               locks=FileRunLocks(locks_dir, grace_s=0.1))
    record = a.prepare(photo, "put a hat on the cat", make_settings(tmp_path / "data", max_rounds=3))
    driving = asyncio.ensure_future(a.start(record))
    await asyncio.sleep(0.1)
    with pytest.raises(RunBusyError, match="already being driven by thinkedit pid"):
        await b.resume(record.run_id)
    assert b.registry.load(record.run_id).status == "running" and b.registry.load(record.run_id).error is None
    state = await driving
    assert state is not None and [r.index for r in state.rounds] == [1, 2, 3]
    assert await b.resume(record.run_id) is not None  # free again once the first is done


async def test_postgres_advisory_locks_hold_across_connections(pg_url: str, tmp_path: Path, photo: Image.Image) -> None:  # noqa: F811
    async with Runner.open(tmp_path / "a", checkpoints=pg_url) as opened:
        assert isinstance(opened.locks, PostgresRunLocks)
    async with open_checkpointer(pg_url) as saver_a, open_checkpointer(pg_url) as saver_b:
        # Two "machines": separate data dirs, separate connections, one database.
        a = slow_runner(tmp_path / "a", saver_a, locks=PostgresRunLocks(pg_url))
        b = slow_runner(tmp_path / "a", saver_b, locks=PostgresRunLocks(pg_url, grace_s=0.1))
        record = a.prepare(photo, "put a hat on the cat", make_settings(tmp_path / "a", max_rounds=3))
        driving = asyncio.ensure_future(a.start(record))
        await asyncio.sleep(0.2)
        with pytest.raises(RunBusyError, match=r"thinkedit pid \d+ on .*PostgreSQL backend \d+"):
            await b.resume(record.run_id)
        assert "PostgreSQL backend" in (await b.locks.holder(record.run_id) or "")
        state = await driving
        assert state is not None and len(state.rounds) == 3
        assert await b.locks.holder(record.run_id) is None  # released with its connection


@pytest.mark.slow
def test_two_concurrent_cli_resumes_never_both_drive(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    profile = tiny_profile_that_never_stops_early(tmp_path)
    run_id, _ = edit_killed_at("round 2 · editing", str(EXAMPLES / "coffee.png"), "make the coffee green",
                               "--profile", str(profile), "--max-rounds", "3", "--out", str(out), data_dir=data_dir)

    def resume() -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "thinkedit.servers.cli", "resume", run_id], cwd=ROOT,
                                env=cli_env(data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # A holder the test controls: a resume must refuse, naming it.
    held = FileRunLocks(data_dir / "checkpoints.locks")
    asyncio.run(held.acquire(run_id))
    refused = resume()
    _, err = refused.communicate(timeout=300)
    assert refused.returncode == 2 and f"already being driven by thinkedit pid {os.getpid()}" in err, err
    asyncio.run(held.release(run_id))

    first, second = resume(), resume()
    results = [(p, *p.communicate(timeout=600)) for p in (first, second)]
    drove = [err for _, _, err in results if "round 2 · editing" in err]
    assert len(drove) == 1, [err[-800:] for _, _, err in results]
    for proc, _, err in results:
        assert proc.returncode == 0 or (
            proc.returncode == 2 and f"already being driven by thinkedit pid {(second if proc is first else first).pid}" in err
        ), err
    data = json.loads((out / "trajectory.json").read_text())
    assert [r["index"] for r in data["rounds"]] == [1, 2, 3]
