"""Checkpointers that know thinkedit's state types (so checkpoints decode without warnings)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

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
