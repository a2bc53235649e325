"""Start, resume and list runs: the one entry point the CLI and the servers call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command
from PIL.Image import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from thinkedit.agent.checkpoint import (
    ArtifactsFirst, default_checkpoint_url, named_images, open_checkpointer, parse_checkpoint_url,
    release_open_transaction,
)
from thinkedit.agent.locks import FileRunLocks, PostgresRunLocks, RunLocks, guarded
from thinkedit.agent.graph import build_graph
from thinkedit.agent.nodes import BackendProvider
from thinkedit.agent.review import check_answer
from thinkedit.agent.settings import STORED, LoopSettings
from thinkedit.agent.state import RunState, checkpointed, plain
from thinkedit.tools.artifact_cache import WRITES
from thinkedit.tools.locations import is_url, storage_locations
from thinkedit.tools.errors import BadInputError, problems
from thinkedit.tools.images import intake_notes, load_image, load_references
from thinkedit.tools.registry import BackendCache
from thinkedit.tools.secrets import mask_secrets
from thinkedit.tools.store import ArtifactStore, open_filesystem, write_whole
from thinkedit.tools.types import ImageRef

log = logging.getLogger(__name__)

#: What a run id may be (it names files and checkpoint threads), matched by the whole id.
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

RecordStatus = Literal["running", "awaiting_review", "done", "cancelled", "error"]
EventCallback = Callable[[dict[str, Any]], None]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunRecord(BaseModel):
    """Describe a run outside the checkpoint: its settings (their one stored copy) and its status."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    created_at: str = Field(default_factory=_now)
    updated_at: str = Field(default_factory=_now)
    instruction: str
    source: ImageRef
    source_name: str = ""
    settings: LoopSettings
    status: RecordStatus = "running"
    error: str | None = None
    out_dir: str | None = None
    usage: dict[str, Any] | None = Field(default=None, description="The run's total usage when it last stopped.")
    notes: list[str] = Field(default_factory=list, description="What reading the source image changed.")
    references: list[ImageRef] = Field(default_factory=list, description="Reference images (image 2, 3, ...).")


#: Records this process has saved whose files are still queued: key -> the JSON text being written.
_UNSAVED: dict[str, str] = {}
_UNSAVED_LOCK = threading.Lock()


class RunRegistry:
    """Keep run records as ``<root>/<run_id>.json``, ``root`` a local directory or an fsspec URL: beside the
    artifacts, ``<artifacts URL>/runs`` when the store is shared (any process sharing it lists and resumes the
    run), else ``<data_dir>/runs``.

    A record is written behind by the artifact store's writer thread (``WRITES``), queued after the images
    handed to a store before it: a record on disk never names an image that is not, and saving one never
    waits for a PNG. This process reads its own queued records from memory; ``flush`` waits for the disk.
    """

    def __init__(self, root: str | Path) -> None:
        self.url = str(root)
        self._fs: Any = None
        if is_url(root):
            fs, path = open_filesystem(str(root))
            if "file" in ((fs.protocol,) if isinstance(fs.protocol, str) else fs.protocol):  # a local directory
                root = path
            else:
                self._fs, self._root = fs, path
                fs.makedirs(path, exist_ok=True)
                return
        Path(root).expanduser().mkdir(parents=True, exist_ok=True)
        self._root = str(Path(root).expanduser().resolve())  # one key per file, however the root was named

    @classmethod
    def for_data(cls, data_dir: str | Path, artifacts: str | None = None) -> RunRegistry:
        """Open the registry of a data dir, or the one shared beside an explicit artifact store."""
        if artifacts:
            return cls(f"{artifacts.rstrip('/')}/runs" if is_url(artifacts) else Path(artifacts).expanduser() / "runs")
        return cls(Path(data_dir).expanduser() / "runs")

    def _key(self, run_id: str) -> str:
        if not _RUN_ID.fullmatch(run_id):  # the whole id: a trailing newline is not part of a plain one
            shown = run_id if len(run_id) <= 80 else f"{run_id[:64]}... ({len(run_id)} characters)"
            raise BadInputError(f"invalid run id {shown!r}: use 1 to 64 letters, digits, '-' or '_'")
        return f"{self._root}/{run_id}.json"

    def save(self, record: RunRecord) -> None:
        """Save ``record`` as it is now: readable here at once, written (atomically) behind."""
        record.updated_at = _now()
        key, text = self._key(record.run_id), record.model_dump_json(indent=2, context=STORED)
        with _UNSAVED_LOCK:
            _UNSAVED[key] = text
        WRITES.queue(key, lambda: self._write(key, text))

    def flush(self, run_id: str) -> None:
        """Block until this process's saves of the run's record are on disk (raise a write that failed)."""
        WRITES.wait(self._key(run_id))

    def delete(self, run_id: str) -> None:
        """Remove a run's record, after any save of it still queued (the caller made sure nobody drives it)."""
        key = self._key(run_id)
        WRITES.wait(key)
        with _UNSAVED_LOCK:
            _UNSAVED.pop(key, None)
        if self._fs is None:
            Path(key).unlink(missing_ok=True)
        elif self._fs.isfile(key):
            self._fs.rm_file(key)

    def _write(self, key: str, text: str) -> None:
        try:
            if self._fs is not None:
                self._fs.pipe_file(key, text.encode())  # object stores replace whole objects
                return
            write_whole(Path(key), text.encode())  # its own temporary file: another process may save too
        finally:
            with _UNSAVED_LOCK:
                if _UNSAVED.get(key) is text:  # a newer save stays until its own write
                    del _UNSAVED[key]

    def _read(self, key: str) -> str | None:
        with _UNSAVED_LOCK:
            text = _UNSAVED.get(key)
        if text is not None:
            return text
        try:  # a record deleted while it is listed is simply gone
            return self._fs.cat_file(key).decode() if self._fs is not None else Path(key).read_text()
        except FileNotFoundError:
            return None

    def load(self, run_id: str) -> RunRecord:
        """Read a run's record, or raise ``BadInputError`` for an unknown id."""
        key = self._key(run_id)
        try:
            text = self._read(key)
        except UnicodeDecodeError as exc:
            raise BadInputError(f"run record {key} is damaged: it is not UTF-8 text ({exc.reason})") from exc
        if text is None:
            raise BadInputError(f"unknown run id {run_id!r} in {self.url}")
        try:
            return RunRecord.model_validate_json(text)
        except ValidationError as exc:
            raise BadInputError(f"run record {key} is damaged: {problems(exc)}") from exc

    def list(self, *, strict: bool = False) -> list[RunRecord]:
        """Return every run's record, newest first; a damaged one is skipped, or with ``strict`` refused."""
        if self._fs is not None:
            keys = list(self._fs.glob(f"{self._root}/*.json"))
        else:
            keys = [str(p) for p in Path(self._root).glob("*.json")]
        with _UNSAVED_LOCK:  # saved here, maybe not on disk yet
            keys += sorted(set(key for key in _UNSAVED if key.rpartition("/")[0] == self._root) - set(keys))
        records = []
        for key in keys:
            try:
                text = self._read(key)
                if text is not None:
                    records.append(RunRecord.model_validate_json(text))
            except (ValueError, OSError) as exc:  # not UTF-8, not a record, unreadable: one run, not the list
                if strict:
                    raise BadInputError(f"run record {key} is damaged: fix or remove it ({exc})") from exc
                log.warning("skipping damaged run record %s: %s", key, exc)
        return sorted(records, key=lambda r: r.created_at, reverse=True)


def _with_settings(values: dict[str, Any], record: RunRecord) -> RunState | None:
    """Read a run's checkpointed values with the settings its record keeps (the one stored copy)."""
    if (state := checkpointed(values)) is None:
        return None
    if state.settings is None:  # checkpoints written before the record was the one copy still hold theirs
        state.settings = record.settings
    return state


def first_input(record: RunRecord) -> dict[str, Any]:
    """Return the graph's input for a prepared run: its stored images, as JSON-native channel values."""
    return {"run_id": record.run_id, "source": plain(record.source), "instruction": record.instruction,
            "notes": record.notes, "reference_images": [plain(ref) for ref in record.references]}


class Runner:
    """Drive runs of the graph with a shared checkpointer, store and run registry."""

    def __init__(
        self,
        data_dir: str | Path,
        checkpointer: BaseCheckpointSaver,
        backends: BackendProvider | None = None,
        *,
        artifacts: str | None = None,
        locks: RunLocks | None = None,
        **graph_options: Any,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser()
        #: One driver per run: lock files in the data dir, or advisory locks beside PostgreSQL checkpoints.
        self.locks: RunLocks = locks or FileRunLocks(self.data_dir / "runs" / "locks")
        #: The shared artifact store's URL, or None for the data dir's own store.
        self.artifacts_url = artifacts or None
        self.registry = RunRegistry.for_data(self.data_dir, self.artifacts_url)
        self.store = ArtifactStore(self.artifacts_url or self.data_dir / "artifacts",
                                   cache_dir=self.data_dir / "artifact-cache")
        backends = backends or BackendCache(data_dir=self.data_dir)  # local models live in this data dir too
        self.graph = build_graph(backends, checkpointer=checkpointer, **graph_options)

    @classmethod
    @asynccontextmanager
    async def open(
        cls, data_dir: str | Path, *, checkpoints: str | None = None, artifacts: str | None = None, **kwargs: Any
    ) -> AsyncIterator[Runner]:
        """Open a runner on the checkpointer and artifact store the URLs name (defaults: in ``data_dir``).

        ``checkpoints`` falls back to ``$THINKEDIT_CHECKPOINT_URL`` then ``<data_dir>/checkpoints.sqlite``;
        ``artifacts`` to ``$THINKEDIT_ARTIFACTS_URL`` then ``<data_dir>/artifacts``.
        """
        checkpoints, artifacts = storage_locations(checkpoints, artifacts)
        checkpoints = checkpoints or default_checkpoint_url(data_dir)
        kind, target = parse_checkpoint_url(checkpoints)
        async with open_checkpointer(checkpoints) as saver:
            if kind == "postgres" and "locks" not in kwargs:
                locks = PostgresRunLocks(target)  # the checkpoints are shared: so is the lock
                try:
                    yield cls(data_dir, saver, artifacts=artifacts, locks=locks, **kwargs)
                finally:
                    await locks.close()
            else:
                # Lock files beside the SQLite file: every process sharing that file sees them.
                kwargs.setdefault("locks", FileRunLocks(Path(target).expanduser().with_suffix(".locks")))
                yield cls(data_dir, saver, artifacts=artifacts, **kwargs)

    def prepare(
        self,
        image: str | Path | bytes | Image,
        instruction: str,
        settings: LoopSettings,
        *,
        run_id: str | None = None,
        out_dir: str | Path | None = None,
        references: Sequence[str | Path | bytes | Image] = (),
        source_name: str | None = None,
    ) -> RunRecord:
        """Validate the inputs, store the source image and record the run (nothing runs yet).

        ``source_name`` is what the image is shown as (default: its path; nothing for bytes).

        Returns once the image is decoded and hashed: its PNG and then the record are written
        behind, in that order, so a first edit need not wait for either (encoding a large photo's
        PNG is slow), and the record is on disk only once the image it names is.
        """
        if not instruction or not instruction.strip():
            raise BadInputError("instruction is empty")
        if Path(settings.data_dir).expanduser().resolve() != self.data_dir.resolve():
            settings = settings.model_copy(update={"data_dir": str(self.data_dir)})
        if settings.artifacts_url != self.artifacts_url:
            settings = settings.model_copy(update={"artifacts_url": self.artifacts_url})
        picture = load_image(image)  # a PIL image too: normalised as a file is
        extra = load_references(references)
        record = RunRecord(
            run_id=run_id or uuid.uuid4().hex[:12],
            instruction=instruction.strip(),
            source=self.store.put(picture),  # queued before the record that names it
            source_name=source_name or ("" if isinstance(image, bytes | Image) else str(image)),
            settings=settings,
            out_dir=str(Path(out_dir).expanduser().resolve()) if out_dir else None,  # whoever reads it, from anywhere
            notes=intake_notes(picture),
            references=[self.store.put(ref) for ref in extra],
        )
        self.registry.save(record)
        return record

    async def start(self, record: RunRecord, on_event: EventCallback | None = None) -> RunState | None:
        """Run a prepared run until it finishes or pauses for review."""
        async with self._holding(record.run_id):
            return await self._drive(record, first_input(record), on_event)

    async def resume(self, run_id: str, on_event: EventCallback | None = None, review: Any = None, *,
                     pending_round: int | None = None) -> RunState | None:
        """Continue a run from its last checkpoint (finished rounds are not redone).

        ``review`` answers the run's pause (``pending_round``: the round it was given for), read under the
        run's lock: an answer to a run cancelled, finished or moved on meanwhile is refused (``check_answer``).
        """
        self.registry.load(run_id)  # an unknown or invalid id is refused before a lock is taken in its name
        async with self._holding(run_id):
            record = self.registry.load(run_id)  # again, under the lock: another driver may have moved it on
            here = {"data_dir": str(self.data_dir), "artifacts_url": self.artifacts_url}  # this process's stores
            if {k: getattr(record.settings, k) for k in here} != here:  # resumed elsewhere (maybe another machine)
                record.settings = record.settings.model_copy(update=here)
            snapshot = await self.graph.aget_state(self._config(run_id))
            pending = snapshot.interrupts[0].value if snapshot.interrupts else None
            if review is not None:
                check_answer(run_id, record.status, pending, pending_round)
            elif pending is not None:
                if record.status != "awaiting_review":  # stopped or killed between the pause and its record
                    record.status, record.error = "awaiting_review", None
                    self.registry.save(record)
                raise BadInputError(f"run {run_id} is awaiting review: give a decision to resume it")
            if pending is not None:
                inputs: Any = Command(resume=review)
            else:  # go on from the checkpoint, or start a run that has none yet
                inputs = None if snapshot.values else first_input(record)
            return await self._drive(record, inputs, on_event)

    async def state(self, run_id: str) -> RunState | None:
        """Return the run's checkpointed state (None before its first checkpoint), with its record's settings."""
        record = self.registry.load(run_id)
        snapshot = await self.graph.aget_state(self._config(run_id))
        return _with_settings(snapshot.values, record)

    async def pending_review(self, run_id: str) -> dict[str, Any] | None:
        """Return the critique a paused run waits on a person for, if it is paused."""
        snapshot = await self.graph.aget_state(self._config(run_id))
        return snapshot.interrupts[0].value if snapshot.interrupts else None

    @staticmethod
    def _config(run_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": run_id}}

    @asynccontextmanager
    async def _holding(self, run_id: str) -> AsyncIterator[None]:
        """Hold the run's lock: a second driver is refused before anything changes."""
        await self.locks.acquire(run_id)
        try:
            yield
        finally:
            await self.locks.release(run_id)

    async def _drive(self, record: RunRecord, inputs: Any, on_event: EventCallback | None) -> RunState | None:
        """Drive the graph from ``inputs`` (the caller holds the run's lock) and keep the record in step."""
        config = self._config(record.run_id)
        if (record.status, record.error) != ("running", None):  # a prepared run's record says so already
            record.status, record.error = "running", None
            self.registry.save(record)
        if isinstance(self.graph.checkpointer, ArtifactsFirst):  # a save failed last time: the database may be back
            self.graph.checkpointer.forget_failure(record.run_id)
        try:
            # Ours save behind the steps ("async"; the edit node waits for them: ArtifactsFirst.settle), others
            # each step before the next ("sync"). Either way a process killed mid-round loses only that round.
            durability = "async" if isinstance(self.graph.checkpointer, ArtifactsFirst) else "sync"
            if durability == "sync":  # such a saver records the source at once: it must be on disk first
                await asyncio.to_thread(ArtifactStore.flush, named_images(inputs))
            async with guarded(self.locks, record.run_id, self.graph.checkpointer):  # a lost lock stops the run
                async for mode, chunk in self.graph.astream(
                    inputs, config, context=record.settings, stream_mode=["custom", "updates"], durability=durability
                ):
                    if mode == "custom" and on_event is not None:
                        on_event(chunk)
        except BaseException as exc:
            cancelled = not isinstance(exc, Exception)
            record.status = "cancelled" if cancelled else "error"
            record.error = "cancelled" if cancelled else mask_secrets(f"{type(exc).__name__}: {exc}")
            self.registry.save(record)
            with contextlib.suppress(Exception):  # then what it had spent, as far as its checkpoint says
                if cancelled:
                    await release_open_transaction(self.graph.checkpointer)
                state = _with_settings((await self.graph.aget_state(config)).values, record)
                record.usage = state.total_usage().model_dump() if state is not None else record.usage
                self.registry.save(record)
            raise
        snapshot = await self.graph.aget_state(config)
        state = _with_settings(snapshot.values, record)
        record.status = "awaiting_review" if snapshot.interrupts else (state.status if state else "error")
        if state is not None:
            record.usage = state.total_usage().model_dump()  # the view adds the token total
        self.registry.save(record)
        await asyncio.to_thread(self.registry.flush, record.run_id)  # a finished run's record is on disk
        if snapshot.interrupts and on_event is not None:
            on_event({"event": "awaiting_review", "run_id": record.run_id, **snapshot.interrupts[0].value})
        return state
