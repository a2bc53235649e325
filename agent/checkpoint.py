"""Checkpointers that know thinkedit's state types, chosen by URL: a SQLite file or PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import random
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel

from thinkedit.tools.errors import BadInputError, ThinkeditError
from thinkedit.tools.artifact_cache import WRITES
from thinkedit.tools.secrets import mask_url, register_secret, url_secrets
from thinkedit.tools.types import ImageRef

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

#: Our pydantic types that appear inside checkpoints.
STATE_TYPES = [
    ("thinkedit.agent.state", "RunState"),
    ("thinkedit.agent.state", "Round"),
    ("thinkedit.agent.state", "Candidate"),
    ("thinkedit.agent.settings", "SettingsInput"),
    ("thinkedit.agent.settings", "LoopSettings"),
    ("thinkedit.tools.config", "EditorConfig"),
    ("thinkedit.tools.config", "ThinkerConfig"),
    ("thinkedit.tools.types", "ImageRef"),
    ("thinkedit.tools.types", "Verdict"),
]


def serializer() -> JsonPlusSerializer:
    """Return a serializer that decodes our state types and nothing unexpected."""
    return JsonPlusSerializer(allowed_msgpack_modules=STATE_TYPES)


log = logging.getLogger(__name__)


class CheckpointSaveError(ThinkeditError, RuntimeError):
    """Stop a run whose checkpoint could not be saved: going on would pay for rounds a resume redoes."""


#: How long opening a SQLite checkpointer keeps retrying its schema set-up while another process holds the lock.
SETUP_DEADLINE_S = 30.0

#: How many rounds of "wait for the saves now running" ``ArtifactsFirst.settle`` takes at most.
SETTLE_PASSES = 16


#: Values that hold no image, skipped at once by ``named_images``.
_ATOMS = frozenset({str, int, float, bool, bytes})

#: The keys that make a dict an image reference (``ImageRef`` written as JSON-native data).
_IMAGE_KEYS = frozenset({"sha256", "uri", "width", "height"})


def named_images(value: Any) -> list[ImageRef]:
    """Return every image reference inside ``value`` (models or their dicts), nested in state, updates, lists, dataclasses."""
    found: list[ImageRef] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if item is None or type(item) in _ATOMS:
            continue
        if isinstance(item, ImageRef):
            found.append(item)
        elif isinstance(item, BaseModel):
            stack.extend(item.__dict__.values())
        elif isinstance(item, dict):
            if _IMAGE_KEYS <= item.keys() <= ImageRef.model_fields.keys():  # an ImageRef as channels hold it
                found.append(ImageRef.model_validate(item))
            else:
                stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):  # LangGraph's Interrupt, Send, ...
            stack.extend(getattr(item, field.name, None) for field in dataclasses.fields(item))
    return found


class ArtifactsFirst:
    """Save a checkpoint or task writes only once the artifacts they may name are durable; let nodes await saves.

    With this saver runs use ``durability="async"``: LangGraph saves each step in the background
    while the next one runs, and the artifact PNGs are encoded behind it too. ``settle`` is the
    deliberate barrier: the edit node awaits it before a new round starts, so every finished round
    is on disk before the next costly step begins (a process killed then resumes after that round).
    """

    _saving: set[asyncio.Future[Any]]
    #: The first save that failed, per thread: it stops the run at its next ``settle``.
    _failed: dict[str, BaseException]
    #: The database, as shown in errors (no password); the openers set it.
    where: str = "the checkpoint database"

    async def _after_artifacts(self, save: Any, named: Any, config: Any = None) -> Any:
        """Run ``save`` once every image that ``named`` (what it saves) refers to is durable.

        A save that fails is remembered for its thread: the run stops at its next ``settle``, and
        the thread's later saves fail at once instead of each waiting on a database that is gone.
        """
        thread = str(((config or {}).get("configurable") or {}).get("thread_id", ""))
        failed = self.__dict__.setdefault("_failed", {})
        if thread in failed:
            save.close()
            raise failed[thread]
        done = asyncio.get_running_loop().create_future()
        self.__dict__.setdefault("_saving", set()).add(done)
        try:
            # Let the step LangGraph starts alongside this save run first, up to its engine call:
            # the save's serialising and SQLite round trips then overlap the engine, not delay it.
            await asyncio.sleep(0)
            try:
                if WRITES.pending():
                    await asyncio.to_thread(WRITES.drain)
                    if WRITES.failed():  # rare: only then look for the images this save names
                        WRITES.raise_failed({ref.sha256 for ref in named_images(named)})
                if (fence := self.__dict__.get("_fences", {}).get(thread)) is not None:
                    await fence()  # right before the write: a run that lost its lock writes nothing more
            except BaseException:
                save.close()  # never to run: it would name an image that is not on disk, or race another driver
                raise
            try:
                return await save
            except Exception as exc:
                raise CheckpointSaveError(
                    f"cannot save run {thread}'s checkpoint to {self.where}, so the run stopped: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        except Exception as exc:
            failed.setdefault(thread, exc)
            raise
        finally:
            if not done.done():
                done.set_result(None)
            self._saving.discard(done)

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        save = super().aput(config, checkpoint, metadata, new_versions)  # type: ignore[misc]
        return await self._after_artifacts(save, checkpoint.get("channel_values"), config)

    async def aput_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        save = super().aput_writes(config, writes, task_id, task_path)  # type: ignore[misc]
        return await self._after_artifacts(save, [value for _, value in writes], config)

    async def settle(self, thread_id: str | None = None) -> None:
        """Return once no save is running, including saves chained behind the ones that were.

        Raise the first failed save of ``thread_id``'s run instead, so no paid step runs after a
        round that could not be saved. Bounded in passes, so saves that other runs keep starting
        cannot hold one run back: a step's own chain (task writes, then its checkpoint) is a few
        passes deep.
        """
        for _ in range(SETTLE_PASSES):
            for _ in range(3):  # saves LangGraph submitted start on the next turns of the event loop
                await asyncio.sleep(0)
            saving = list(self.__dict__.get("_saving", ()))
            if not saving:
                break
            # wait, not gather: a run cancelled while it waits must not cancel the saves (other runs' too).
            await asyncio.wait(saving)
        if thread_id is not None and (failure := self.__dict__.get("_failed", {}).get(thread_id)) is not None:
            raise failure

    def fence(self, thread_id: str, check: Callable[[], Awaitable[None]] | None) -> None:
        """Await ``check`` right before each save of the thread (it raises to refuse the save); None drops it."""
        fences = self.__dict__.setdefault("_fences", {})
        if check is None:
            fences.pop(thread_id, None)
        else:
            fences[thread_id] = check

    def forget_failure(self, thread_id: str) -> None:
        """Let a run whose save failed be driven again (a resume, once the database is back)."""
        self.__dict__.get("_failed", {}).pop(thread_id, None)


@functools.cache
def artifacts_first(saver_class: type[BaseCheckpointSaver]) -> type[BaseCheckpointSaver]:
    """Return ``saver_class`` with artifact-aware saves (``ArtifactsFirst``) in front of its own."""
    return type(saver_class.__name__, (ArtifactsFirst, saver_class), {"__module__": __name__})


def memory_checkpointer() -> InMemorySaver:
    """Return an in-memory checkpointer (tests, throwaway runs)."""
    return artifacts_first(InMemorySaver)(serde=serializer())  # type: ignore[return-value]


@asynccontextmanager
async def sqlite_checkpointer(path: str | Path) -> AsyncIterator[BaseCheckpointSaver]:
    """Open a SQLite checkpointer at ``path`` for the duration of the block."""
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(str(path)) as conn:
        saver = artifacts_first(AsyncSqliteSaver)(conn, serde=serializer())
        saver.where = str(path)
        await _set_up(saver, conn, path)  # WAL journal, tables
        # WAL + NORMAL: a commit survives the process being killed (what resuming needs); only an OS
        # crash or power cut may lose the last commits. FULL would fsync on every checkpoint write.
        await conn.execute("PRAGMA synchronous=NORMAL")
        yield saver


async def _set_up(saver: Any, conn: Any, path: Path) -> None:
    """Run the saver's schema set-up, retrying while another connection holds the database's lock.

    Two servers opening one fresh file at once both switch it to WAL and create its tables; SQLite
    answers one of them "database is locked" at once, without waiting out the busy timeout, when
    waiting could deadlock (both hold a read lock and want to write). The statements are
    idempotent, so the loser rolls back, waits a moment and runs them again.
    """
    import sqlite3

    deadline = time.monotonic() + SETUP_DEADLINE_S
    delay = 0.01
    while True:
        try:
            await saver.setup()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                exc.add_note(f"while setting up the checkpoint database {path}")
                raise
            log.debug("checkpoint database %s is locked during set-up; retrying in %.0f ms", path, delay * 1e3)
            await conn.rollback()
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.5)


def default_checkpoint_url(data_dir: str | Path) -> str:
    """Return the default checkpointer URL: ``<data_dir>/checkpoints.sqlite``."""
    return f"sqlite://{(Path(data_dir).expanduser() / 'checkpoints.sqlite').resolve()}"


def parse_checkpoint_url(url: str) -> tuple[str, str]:
    """Split a checkpointer URL into ``("sqlite", path)`` or ``("postgres", dsn)``, naming what is wrong.

    A PostgreSQL URL's password is registered as a secret (masked wherever it would be shown), and a
    URL that libpq would read differently from us is refused before anything connects with it.
    """
    register_secret(*url_secrets(url))  # before anything shows it, however it is (mis)written
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed "[" of an IPv6 host
        raise BadInputError(f"checkpointer URL {mask_url(url)!r} cannot be read: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:///absolute/path: the URL's path is the file's (absolute) path.
        if parts.netloc or not parts.path or parts.path == "/":
            raise BadInputError(f"checkpointer URL {url!r}: expected sqlite:///path/to/file.sqlite")
        return "sqlite", unquote(parts.path)
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        from thinkedit.agent.postgres import check_postgres_url

        check_postgres_url(url, parts)
        return "postgres", url.replace(f"{parts.scheme}://", "postgresql://", 1)
    raise BadInputError(
        f"checkpointer URL {mask_url(url)!r}: unsupported scheme {parts.scheme or '(none)'!r}; "
        "use sqlite:///path/to/file.sqlite or postgresql://user:password@host:port/database"
    )


@asynccontextmanager
async def open_checkpointer(url: str) -> AsyncIterator[BaseCheckpointSaver]:
    """Open the checkpointer a URL names (``sqlite:///file`` or ``postgresql://...``) for the block."""
    kind, target = parse_checkpoint_url(url)
    opener = sqlite_checkpointer if kind == "sqlite" else postgres_checkpointer
    async with opener(target) as saver:
        yield saver


@asynccontextmanager
async def postgres_checkpointer(dsn: str) -> AsyncIterator[BaseCheckpointSaver]:
    """Open a PostgreSQL checkpointer (tables created on first use) for the duration of the block."""
    from thinkedit.agent.postgres import NO_EXTRA, open_pool  # only PostgreSQL runs load its driver

    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ModuleNotFoundError as exc:
        raise BadInputError(NO_EXTRA) from exc
    async with open_pool(dsn) as pool:
        saver = artifacts_first(AsyncPostgresSaver)(pool, serde=serializer())  # type: ignore[arg-type]
        saver.where = mask_url(dsn)
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
