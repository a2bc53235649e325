"""One process drives a run at a time: a lock per run, taken by the Runner around every drive.

Without it, two ``thinkedit resume RUN_ID`` (or a resume beside an MCP server) both drive rounds
into one checkpoint thread. Local checkpoints (SQLite) use a lock file per run beside the data; the
operating system drops it when its process dies, so a killed run is resumable at once. PostgreSQL
checkpoints use a session advisory lock in the same database, so the lock holds across machines
and dies with its connection. A second driver waits a few seconds (a cancelled holder may be
unwinding), then is refused with a message naming the holder.

A PostgreSQL lock can go while its run is driven (the server ends the session, a NAT drops the idle
connection): ``guarded`` watches it then, and stops the run with ``LockLostError`` before it writes
another checkpoint, since another process may take the lock and drive the run too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from thinkedit.tools.errors import BadInputError, ThinkeditError, one_line
from thinkedit.tools.secrets import mask_url

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process check, one process per data dir
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: How long a second driver waits for a holder that is just stopping (a cancelled run unwinding).
GRACE_S = 5.0
#: How often a PostgreSQL lock's session is checked while its run is driven (it is checked before each save too).
WATCH_S = 2.0


class RunBusyError(BadInputError):
    """Refuse to drive a run another process (or another Runner) drives now."""

    def __init__(self, run_id: str, holder: str) -> None:
        super().__init__(
            f"run {run_id} is already being driven by {holder}; wait for it to finish or stop that process, "
            "then resume again"
        )
        self.run_id = run_id
        self.holder = holder


class LockLostError(ThinkeditError, RuntimeError):
    """Stop a run whose lock went while it was driven: another process may take the lock and drive it too."""

    def __init__(self, run_id: str, where: str, cause: str) -> None:
        super().__init__(
            f"lost the run lock of run {run_id}: the PostgreSQL session at {where} that held it ended or stopped "
            f"answering ({cause}); another process may drive this run now, so this one stopped before saving more. "
            f"The rounds already saved stay: resume it (thinkedit resume {run_id}) once no other process drives it"
        )
        self.run_id = run_id


def holder_label() -> str:
    """Describe this process for others who find its lock: pid, host, since when."""
    since = datetime.now(UTC).isoformat(timespec="seconds")
    return f"thinkedit pid {os.getpid()} on {socket.gethostname()} since {since}"


class RunLocks(Protocol):
    """Take, give back and inspect per-run locks."""

    async def acquire(self, run_id: str) -> None:
        """Take the run's lock or raise ``RunBusyError`` naming its holder."""

    async def release(self, run_id: str) -> None:
        """Give the run's lock back (no-op when not held)."""

    async def holder(self, run_id: str) -> str | None:
        """Name whoever else holds the run's lock now (None when free or held by this Runner)."""


@asynccontextmanager
async def guarded(locks: RunLocks, run_id: str, saver: Any = None) -> AsyncIterator[None]:
    """Drive a run in the block under its lock's watch, where the lock has one (``PostgresRunLocks.watch``).

    A lock file lasts as long as its process, so there is nothing to watch: the block just runs.
    """
    watch = getattr(locks, "watch", None)
    if watch is None:
        yield
        return
    async with watch(run_id, saver):
        yield


class FileRunLocks:
    """Lock files ``<root>/<run_id>.lock`` (``flock``), each naming its holder inside."""

    def __init__(self, root: Path, grace_s: float = GRACE_S) -> None:
        self.root = Path(root)
        self.grace_s = grace_s
        self._held: dict[str, int] = {}

    def _path(self, run_id: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root / f"{run_id}.lock"

    def _try(self, run_id: str) -> int | None:
        """Return a locked descriptor of the run's file, or None when someone holds it."""
        fd = os.open(self._path(run_id), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if fcntl is None:
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def _who(self, run_id: str) -> str:
        try:
            return self._path(run_id).read_text().strip() or "another process"
        except OSError:
            return "another process"

    async def acquire(self, run_id: str) -> None:
        if run_id in self._held:
            raise RunBusyError(run_id, "this process")
        deadline = asyncio.get_running_loop().time() + self.grace_s
        while (fd := self._try(run_id)) is None:
            if asyncio.get_running_loop().time() >= deadline:
                raise RunBusyError(run_id, self._who(run_id))
            await asyncio.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder_label().encode(), 0)
        self._held[run_id] = fd

    async def release(self, run_id: str) -> None:
        fd = self._held.pop(run_id, None)
        if fd is not None:
            os.close(fd)  # closing drops the lock; the stale name inside is harmless

    async def holder(self, run_id: str) -> str | None:
        if run_id in self._held:
            return None
        fd = self._try(run_id)
        if fd is None:
            return self._who(run_id)
        os.close(fd)
        return None


def advisory_key(run_id: str) -> int:
    """Map a run id to a positive 63-bit advisory-lock key (one namespace for thinkedit runs)."""
    digest = hashlib.sha256(f"thinkedit-run:{run_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


_HOLDER_SQL = """
SELECT a.pid, a.application_name, a.client_addr::text AS addr
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid::bigint = %(hi)s AND l.objid::bigint = %(lo)s
"""

#: Whether this session still holds the run's advisory lock.
_MINE_SQL = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND pid = pg_backend_pid()
  AND classid::bigint = %(hi)s AND objid::bigint = %(lo)s
"""


class PostgresRunLocks:
    """Session advisory locks in the checkpoint database, one connection per held run.

    The connections use TCP keepalives (``postgres.keepalives``), and ``watch`` checks a driven run's
    lock every ``watch_s`` seconds and before each of its checkpoint saves.
    """

    def __init__(self, dsn: str, grace_s: float = GRACE_S, watch_s: float = WATCH_S) -> None:
        self.dsn = dsn
        self.grace_s = grace_s
        self.watch_s = watch_s
        self._held: dict[str, Any] = {}

    async def _connect(self) -> Any:
        import psycopg

        from thinkedit.agent.postgres import connect_timeout, keepalives

        return await psycopg.AsyncConnection.connect(
            self.dsn, autocommit=True, application_name=holder_label()[:63], **connect_timeout(self.dsn),
            **keepalives(self.dsn),
        )

    async def _lost_because(self, conn: Any, run_id: str) -> str | None:
        """Return why this connection no longer holds the run's lock, or None while it does."""
        from thinkedit.agent.postgres import DB_WAIT_S

        key = advisory_key(run_id)

        async def ask() -> Any:
            cur = await conn.execute(_MINE_SQL, {"hi": key >> 32, "lo": key & 0xFFFFFFFF})
            return await cur.fetchone()

        # Waited for, never cancelled: psycopg closes a connection whose query is interrupted, dropping the lock.
        query = asyncio.ensure_future(ask())
        if not (await asyncio.wait({query}, timeout=DB_WAIT_S))[0]:
            query.add_done_callback(lambda done: done.cancelled() or done.exception())  # its outcome is moot
            return f"a check of the lock got no answer within {DB_WAIT_S:g} s"
        try:
            row = query.result()
        except Exception as exc:  # psycopg's OperationalError: the session ended, the connection broke
            return one_line(exc)
        return None if row and row[0] else "the session no longer holds the lock"

    @asynccontextmanager
    async def watch(self, run_id: str, saver: Any = None) -> AsyncIterator[None]:
        """Run the block (a drive of the run) while the run's lock is checked; once it is lost, stop the block.

        The lock is checked as the block starts, every ``watch_s`` seconds, and right before each checkpoint
        save of the run when ``saver`` takes fences (``ArtifactsFirst.fence``): a save after the loss is not
        written. The block's task is cancelled and the block raises ``LockLostError``.
        """
        from thinkedit.agent.postgres import DB_WAIT_S

        conn = self._held.get(run_id)
        if conn is None:  # not held here: nothing to watch
            yield
            return
        driver = asyncio.current_task()
        lost: list[LockLostError] = []
        stopped: list[bool] = []
        asking: list[asyncio.Future[str | None]] = []  # the check under way: the patrol and the fences share it

        async def check() -> None:
            if not lost and (not asking or asking[0].done()):
                asking[:] = [asyncio.ensure_future(self._lost_because(conn, run_id))]
            if not lost and (cause := await asyncio.shield(asking[0])) is not None and not lost:
                lost.append(LockLostError(run_id, mask_url(self.dsn), cause))
                log.error("%s", lost[0])
                if driver is not None and asyncio.current_task() is not driver:
                    stopped.append(driver.cancel())  # an engine call in flight stops too
            if lost:
                raise lost[0]

        async def patrol() -> None:
            with contextlib.suppress(LockLostError):
                while True:
                    await asyncio.sleep(self.watch_s)
                    await check()

        await check()
        patrolling = asyncio.create_task(patrol(), name=f"thinkedit run lock watch {run_id}")
        fence = getattr(saver, "fence", None)
        if fence is not None:
            fence(run_id, check)
        try:
            yield
        except BaseException as exc:
            if not lost:
                raise
            if isinstance(exc, asyncio.CancelledError) and any(stopped) and driver is not None:
                if driver.uncancel() > 0:  # cancelled by someone else too (a user's cancel): it ends cancelled
                    raise
            raise lost[0] from None
        finally:
            if fence is not None:
                fence(run_id, None)
            patrolling.cancel()
            await asyncio.wait([patrolling, *asking], timeout=None if not asking else DB_WAIT_S)
        if lost:
            raise lost[0]

    async def _who(self, conn: Any, run_id: str) -> str:
        key = advisory_key(run_id)
        cur = await conn.execute(_HOLDER_SQL, {"hi": key >> 32, "lo": key & 0xFFFFFFFF})
        row = await cur.fetchone()
        if row is None:
            return "another process"
        pid, name, addr = row
        return f"{name or 'a client'} (PostgreSQL backend {pid}{', from ' + addr if addr else ''})"

    async def acquire(self, run_id: str) -> None:
        if run_id in self._held:
            raise RunBusyError(run_id, "this process")
        conn = await self._connect()
        deadline = asyncio.get_running_loop().time() + self.grace_s
        try:
            while True:
                cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (advisory_key(run_id),))
                row = await cur.fetchone()
                if row and row[0]:
                    break
                if asyncio.get_running_loop().time() >= deadline:
                    raise RunBusyError(run_id, await self._who(conn, run_id))
                await asyncio.sleep(0.1)
        except BaseException:
            await conn.close()
            raise
        self._held[run_id] = conn

    async def release(self, run_id: str) -> None:
        conn = self._held.pop(run_id, None)
        if conn is not None:
            await conn.close()  # the session ends, and its advisory lock with it

    async def holder(self, run_id: str) -> str | None:
        if run_id in self._held:
            return None
        conn = await self._connect()
        try:
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (advisory_key(run_id),))
            row = await cur.fetchone()
            if row and row[0]:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (advisory_key(run_id),))
                return None
            return await self._who(conn, run_id)
        finally:
            await conn.close()

    async def close(self) -> None:
        """Drop every lock this Runner holds (its connections)."""
        for run_id in list(self._held):
            await self.release(run_id)
