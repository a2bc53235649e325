"""Checkpointers that know thinkedit's state types (so checkpoints decode without warnings)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

#: Our pydantic types that appear inside checkpoints.
STATE_TYPES = [
    ("agent.state", "RunState"),
    ("agent.state", "Round"),
    ("agent.state", "Candidate"),
    ("agent.state", "SettingsInput"),
    ("agent.settings", "LoopSettings"),
    ("tools.config", "EditorConfig"),
    ("tools.config", "ThinkerConfig"),
    ("tools.types", "ImageRef"),
    ("tools.types", "Verdict"),
]


def serializer() -> JsonPlusSerializer:
    """Return a serializer that decodes our state types and nothing unexpected."""
    return JsonPlusSerializer(allowed_msgpack_modules=STATE_TYPES)


def memory_checkpointer() -> InMemorySaver:
    """Return an in-memory checkpointer (tests, throwaway runs)."""
    return InMemorySaver(serde=serializer())


@asynccontextmanager
async def sqlite_checkpointer(path: str | Path) -> AsyncIterator[BaseCheckpointSaver]:
    """Open a SQLite checkpointer at ``path`` for the duration of the block."""
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(str(path)) as conn:
        saver = AsyncSqliteSaver(conn, serde=serializer())
        await saver.setup()
        yield saver


async def release_open_transaction(saver: Any) -> None:
    """Roll back a checkpoint write that a cancelled step left uncommitted, so no one stays locked out.

    A write cancelled between its INSERT and its COMMIT keeps SQLite's write lock; once the
    connection closes it lingers in a "zombie" connection until the cursor is garbage-collected,
    and other processes (or a restarted server) get "database is locked". Rolling back drops only
    that unfinished step, which a resume redoes.
    """
    conn, lock = getattr(saver, "conn", None), getattr(saver, "lock", None)
    try:
        import aiosqlite
    except ImportError:  # pragma: no cover - the sqlite extra is a core dependency
        return
    if not isinstance(conn, aiosqlite.Connection) or lock is None:
        return
    # Not guarded by ``in_transaction``: the cancelled INSERT may still be queued on the
    # connection's thread; the rollback queues behind it (and is a no-op if nothing is open).
    async with lock:
        await conn.rollback()
