"""A run whose PostgreSQL lock session ends stops at once, saves nothing more, and resumes later (here or elsewhere)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from PIL import Image

from thinkedit.agent.checkpoint import open_checkpointer
from thinkedit.agent.locks import PostgresRunLocks, advisory_key
from thinkedit.agent.runs import Runner
from thinkedit.tools.errors import ThinkeditError
from tests.cli import ROOT
from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker
from tests.postgres import PASSWORD
from tests.test_graph import make_settings
from tests.test_postgres import pg_url  # noqa: F401 - the session's PostgreSQL server
from tests.test_run_lock import SCRIPT


async def until(done: Callable[[], bool], timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not done():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def end_lock_session(url: str, run_id: str) -> None:
    """Terminate the PostgreSQL backend holding the run's advisory lock, as an admin or a failover would."""
    key = advisory_key(run_id)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
            " AND classid::bigint = %s AND objid::bigint = %s", (key >> 32, key & 0xFFFFFFFF))
        row = await cur.fetchone()
        assert row is not None, "nobody holds the run's lock"
        await conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
        for _ in range(500):  # gone from the server, its lock with it
            cur = await conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (row[0],))
            if (await cur.fetchone())[0] == 0:  # type: ignore[index]
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the lock's backend did not end")


async def saved(url: str, run_id: str) -> int:
    """Count the rows of the run's thread in the checkpoint tables."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        total = 0
        for table in ("checkpoints", "checkpoint_writes", "checkpoint_blobs"):
            cur = await conn.execute(f"SELECT count(*) FROM {table} WHERE thread_id = %s", (run_id,))
            total += (await cur.fetchone())[0]  # type: ignore[index]
        return total


def runner(data_dir: Path, saver, editor: ScriptedEditor, locks: PostgresRunLocks, *,  # type: ignore[no-untyped-def]
           from_round: int = 1) -> Runner:
    """A Runner on the scripted thinker, its verdicts from ``from_round``'s on (a resume's thinker)."""
    thinker = ScriptedThinker(list(SCRIPT[from_round - 1:]))
    return Runner(data_dir, saver, backends=FakeBackends(editor, thinker), locks=locks)


async def test_the_lock_connection_uses_tcp_keepalives(pg_url: str) -> None:  # noqa: F811
    locks = PostgresRunLocks(pg_url)
    await locks.acquire("keepalive-run")
    try:
        held = await locks._held["keepalive-run"].execute("SELECT 1")  # the connection is the lock's own
        params = held.connection.info.get_parameters()
        assert params.get("keepalives") == "1" and params.get("keepalives_idle") == "10", params
    finally:
        await locks.close()


async def test_a_run_whose_lock_session_ends_stops_mid_edit_and_another_runner_resumes_it(
    pg_url: str, tmp_path: Path, photo: Image.Image  # noqa: F811
) -> None:
    async with open_checkpointer(pg_url) as saver_a, open_checkpointer(pg_url) as saver_b:
        locks = PostgresRunLocks(pg_url)
        locks.watch_s = 0.1  # the watchdog, checking often: the engine call in flight is stopped
        editor = ScriptedEditor(delay=2.0)
        a = runner(tmp_path / "a", saver_a, editor, locks)
        record = a.prepare(photo, "put a hat on the cat", make_settings(tmp_path / "a", max_rounds=3))
        driving = asyncio.ensure_future(a.start(record))
        await until(lambda: len(editor.calls) == 2)  # round 2 is editing: round 1 is saved
        before = await saved(pg_url, record.run_id)
        await end_lock_session(pg_url, record.run_id)
        ended = asyncio.get_running_loop().time()
        with pytest.raises(ThinkeditError, match=f"lost the run lock of run {record.run_id}: the PostgreSQL session"):
            await asyncio.wait_for(driving, timeout=20)
        assert asyncio.get_running_loop().time() - ended < 1.5  # the edit was stopped, not waited for
        assert type(driving.exception()).__name__ == "LockLostError"
        await asyncio.sleep(0.3)
        assert await saved(pg_url, record.run_id) == before  # nothing written after the loss
        stored = a.registry.load(record.run_id)
        assert stored.status == "error" and stored.error is not None, stored
        assert stored.error.startswith("LockLostError: lost the run lock") and "resume" in stored.error
        assert "thinkedit:***@127.0.0.1" in stored.error and PASSWORD not in stored.error, stored.error

        # Another machine takes the lock and finishes the run from round 1, the last one saved.
        other = ScriptedEditor()
        b = runner(tmp_path / "a", saver_b, other, PostgresRunLocks(pg_url, grace_s=0.1), from_round=2)
        state = await b.resume(record.run_id)
        assert state is not None and [r.index for r in state.rounds] == [1, 2, 3]
        assert len(other.calls) == 2 and b.registry.load(record.run_id).status == "done"


async def test_a_save_after_the_lock_is_lost_is_refused_even_before_the_watchdog_looks(
    pg_url: str, tmp_path: Path, photo: Image.Image  # noqa: F811
) -> None:
    async with open_checkpointer(pg_url) as saver:
        locks = PostgresRunLocks(pg_url)
        locks.watch_s = 60.0  # the watchdog sleeps: the check before the save finds the loss
        editor = ScriptedEditor(delay=1.0)
        a = runner(tmp_path / "a", saver, editor, locks)
        record = a.prepare(photo, "put a hat on the cat", make_settings(tmp_path / "a", max_rounds=3))
        driving = asyncio.ensure_future(a.start(record))
        await until(lambda: len(editor.calls) == 2)
        before = await saved(pg_url, record.run_id)
        await end_lock_session(pg_url, record.run_id)
        with pytest.raises(ThinkeditError, match="lost the run lock"):
            await asyncio.wait_for(driving, timeout=5)  # at the edit's save, well before the watchdog's turn
        await asyncio.sleep(0.3)
        assert await saved(pg_url, record.run_id) == before  # round 2's edit was not written
        assert a.registry.load(record.run_id).status == "error"

        # The same process (its locks) resumes it: round 2 is redone, round 1 is not.
        editor.delay = 0.0
        state = await runner(tmp_path / "a", saver, editor, locks, from_round=2).resume(record.run_id)
        assert state is not None and [r.index for r in state.rounds] == [1, 2, 3]
        assert len(editor.calls) == 4 and a.registry.load(record.run_id).status == "done"
        assert await locks.holder(record.run_id) is None and not locks._held  # given back after each drive


def test_the_docs_give_the_lock_checks_as_set() -> None:
    from thinkedit.agent.locks import WATCH_S
    from thinkedit.agent.postgres import DB_WAIT_S, KEEPALIVES

    text = " ".join((ROOT / "docs" / "serving.md").read_text().split())
    idle, every, tries = (KEEPALIVES[k] for k in ("keepalives_idle", "keepalives_interval", "keepalives_count"))
    assert f"probes after {idle} s idle, every {every} s, {tries} tries" in text
    assert f"checked every {WATCH_S:g} s" in text and f"no answer within {DB_WAIT_S:g} s" in text


class _Fences:
    """A saver's fence registry, as ``ArtifactsFirst.fence`` keeps it."""

    check: Callable[[], object] | None = None

    def fence(self, thread_id: str, check: Callable[[], object] | None) -> None:
        self.check = check


async def _slow_proxy(port: int, delay: list[float]) -> tuple[asyncio.Server, int]:
    """A loopback TCP proxy to PostgreSQL that holds every answer back ``delay[0]`` seconds: a slow, live server."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, late: bool) -> None:
        try:
            while data := await reader.read(65536):
                if late and delay[0]:
                    await asyncio.sleep(delay[0])
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        asyncio.ensure_future(pipe(reader, upstream_writer, False))
        asyncio.ensure_future(pipe(upstream_reader, writer, True))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_a_slow_database_that_answers_keeps_the_lock(pg_url: str) -> None:  # noqa: F811
    """Checks of one run share one query on the lock's connection, so answers within the wait never add up to a loss.

    The patrol and several checkpoint saves check at once; each answer comes a good part of the wait late.
    """
    from urllib.parse import urlsplit

    port = urlsplit(pg_url).port
    delay = [0.0]
    server, proxied = await _slow_proxy(port, delay)
    locks = PostgresRunLocks(pg_url.replace(f":{port}/", f":{proxied}/"), watch_s=0.05)
    try:
        await locks.acquire("slow-run")
        saver = _Fences()
        async with locks.watch("slow-run", saver):
            delay[0] = 1.5
            await asyncio.sleep(0.2)  # the patrol's check is under way
            assert saver.check is not None
            await asyncio.gather(*(asyncio.ensure_future(saver.check()) for _ in range(4)))  # saves, as tasks do
            delay[0] = 0.0
        cur = await locks._held["slow-run"].execute("SELECT 1")
        assert await cur.fetchone() == (1,)  # the lock's connection is still open
    finally:
        delay[0] = 0.0
        await locks.close()
        server.close()


async def test_a_users_cancel_as_the_lock_goes_ends_the_run_cancelled(pg_url: str) -> None:  # noqa: F811
    """A cancel of the run (MCP cancel_run, Ctrl-C) in the same turn as the loss is not turned into an error."""
    locks = PostgresRunLocks(pg_url, watch_s=0.01)
    checks: list[int] = []
    driver: list[asyncio.Task[None]] = []

    async def lost_on_second_check(conn: object, run_id: str) -> str | None:
        checks.append(1)
        if len(checks) == 1:
            return None
        driver[0].cancel()  # the user's cancel, landing in the same turn as the loss
        return "the session ended"

    locks._lost_because = lost_on_second_check  # type: ignore[method-assign] - the race, made certain

    async def drive() -> None:
        async with locks.watch("cancelled-run"):
            await asyncio.sleep(30)

    try:
        await locks.acquire("cancelled-run")
        driver.append(asyncio.ensure_future(drive()))
        await asyncio.wait(driver, timeout=10)
        assert driver[0].done() and driver[0].cancelled(), driver[0]
    finally:
        await locks.close()
