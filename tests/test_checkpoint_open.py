"""Opening one fresh SQLite checkpoint file from several connections at once (two servers starting together)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from thinkedit.agent.checkpoint import sqlite_checkpointer

ROUNDS = 40
OPENERS = 3


async def open_and_write(path: Path, name: str) -> str:
    async with sqlite_checkpointer(path) as saver:
        async with saver.lock:
            await saver.conn.execute("INSERT INTO writes VALUES (?, '', 'c', 't', '', 0, 'ch', 'json', x'00')", (name,))
            await saver.conn.commit()
    return name


async def test_concurrent_opens_of_a_fresh_file_all_succeed(tmp_path: Path) -> None:
    # SQLite answers one of two connections that both want to write a fresh file "database is
    # locked" at once (no busy wait, it would deadlock): before the set-up retried, about one
    # round in ten failed here.
    for n in range(ROUNDS):
        path = tmp_path / f"{n}" / "checkpoints.sqlite"
        names = [f"opener-{n}-{i}" for i in range(OPENERS)]
        results = await asyncio.gather(*(open_and_write(path, name) for name in names), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, f"round {n}: {failures!r}"
        async with sqlite_checkpointer(path) as saver:
            async with saver.conn.execute("SELECT thread_id FROM writes ORDER BY thread_id") as cursor:
                assert [row[0] async for row in cursor] == sorted(names)
            async with saver.conn.execute("PRAGMA journal_mode") as cursor:
                assert (await cursor.fetchone())[0] == "wal"


def test_a_sqlite_checkpoint_never_loads_the_postgresql_code(tmp_path: Path) -> None:
    """A SQLite run runs no line of the PostgreSQL module (nor its driver): only a postgresql:// URL loads it."""
    import subprocess
    import sys

    code = (
        "import asyncio, sys\n"
        "from thinkedit.agent.checkpoint import open_checkpointer\n"
        "async def main():\n"
        f"    async with open_checkpointer({'sqlite:///' + str(tmp_path / 'c.sqlite')!r}):\n"
        "        pass\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m.startswith(('thinkedit.agent.postgres', 'psycopg'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
