"""Own the editor engine of one server: load it in the background, queue edits to it, shut it down."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Protocol

from thinkedit.servers.editor.batching import MicroBatcher
from thinkedit.servers.editor.budget import WorkBudget, model_area, work_budget
from thinkedit.servers.editor.settings import SERVED_BACKENDS, EditorServerSettings
from thinkedit.servers.editor.metrics import EditorMetrics
from thinkedit.servers.editor.schemas import ModelCard
from thinkedit.servers.editor.worker import PipelineWorker, picklable
from thinkedit.tools.errors import BackendError, BadInputError
from thinkedit.tools.protocols import Editor
from thinkedit.tools.types import EditRequest, EditResult

log = logging.getLogger(__name__)

Status = Literal["loading", "ready", "failed", "draining"]


class ServedEditor(Editor, Protocol):
    """An editor a server hosts: a local pipeline, which also runs a batch of requests in one call."""

    def edit_batch(self, requests: list[EditRequest]) -> list[EditResult]:
        """Return one result per request, in order (the batcher groups compatible requests)."""
        ...


EngineFactory = Callable[[EditorServerSettings], ServedEditor]


def build_engine(settings: EditorServerSettings) -> ServedEditor:
    """Build the local pipeline ``settings`` names (one per server or replica); refuse any other backend."""
    if settings.backend not in SERVED_BACKENDS:
        raise BadInputError(
            f"the editor server hosts a local pipeline ({', '.join(SERVED_BACKENDS)}), not the {settings.backend!r} "
            "backend: the loop calls a hosted editor itself (--profile openai or replicate-kontext, "
            "or a profile of yours)"
        )
    from thinkedit.tools.editors.diffusers_engine import DiffusersEditor

    # The engine's per-call image cap follows the server's batch size, so --max-batch 1 means one image per call.
    return DiffusersEditor(settings.editor_config(), max_batch_images=settings.max_batch)


def batch_key(request: EditRequest) -> Hashable:
    """Return what two requests must share to run in one pipeline call: image size and settings."""
    return (request.image.size, tuple(sorted((k, repr(v)) for k, v in request.settings.items())))


class EditorService:
    """Hold the engine and its batcher, and say whether the server can take edits."""

    def __init__(
        self, settings: EditorServerSettings, metrics: EditorMetrics, engine_factory: EngineFactory = build_engine
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._engine_factory = engine_factory
        self.engine: ServedEditor | None = None
        self.batcher: MicroBatcher[EditRequest, EditResult] | None = None
        self.status: Status = "loading"
        self.error: str | None = None
        self.created = int(time.time())
        #: Where the pipeline runs: a worker process (away from this process's event loop and GIL), or, for
        #: ``placement="thread"`` and factories that cannot be sent to a process, this process's pipeline thread.
        self.worker: PipelineWorker | None = None
        if settings.placement in ("process", "process-thread"):
            if picklable(engine_factory):
                thread = "pipeline" if settings.placement == "process-thread" else "main"
                self.worker = PipelineWorker(engine_factory, settings, thread)
            else:
                log.warning("engine factory %r cannot go to a worker process; the pipeline runs on a thread",
                            engine_factory)
        # Every pipeline call (or every call to the worker) on one thread: torch's OpenMP pool is per
        # calling thread, and pools left spinning by other threads would steal the cores from the one working.
        self.budget: WorkBudget = self._budget(None)
        self._pipeline_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="editor-pipeline")
        self._closing: asyncio.Future[None] | None = None  # the one shutdown, once begun

    async def start(self) -> None:
        """Build and load the engine off the event loop, then start the batcher."""
        started = time.perf_counter()
        try:
            self.engine = await asyncio.get_running_loop().run_in_executor(self._pipeline_thread, self._build)
        except Exception as exc:  # noqa: BLE001 - a failed load is reported on /health, not a crash
            if self._closing is not None:  # shutdown ended the worker mid-load: nothing failed
                log.info("editor %s: loading stopped by shutdown", self.settings.model)
                return
            self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("editor %s failed to load", self.settings.model)
            return
        if self._closing is not None:  # shut down while it loaded: take no edits
            return
        self.budget = self._budget(getattr(self.engine, "model", None))
        self.batcher = MicroBatcher(
            self._run_batch,
            max_queue=self.settings.max_queue,
            max_batch=self.settings.max_batch,
            window_s=self.settings.batch_window_ms / 1000.0,
            metrics=self.metrics,
        )
        self.batcher.start()
        self.status = "ready"
        log.info("editor %s ready in %.1f s", self.settings.model, time.perf_counter() - started)

    def _budget(self, model: Any) -> WorkBudget:
        """Return the request budget for ``model`` (the engine's table entry, when it has one)."""
        if model is None and self.settings.backend == "diffusers":
            from thinkedit.tools.editors.models import EDITOR_MODELS

            model = EDITOR_MODELS.get(self.settings.model)
        s = self.settings
        return work_budget(model_area(model, s.max_side), s.max_images, s.max_input_pixels, s.max_output_pixels)

    def _build(self) -> ServedEditor:
        """Construct the engine and load its pipeline: in the worker process, or here on the pipeline thread.

        With a worker, this process keeps an unloaded engine of its own for checking requests and
        describing the model (building one checks the settings and loads no weights).
        """
        engine = self._engine_factory(self.settings)
        if self.worker is not None:
            self.worker.start()
            return engine
        load = getattr(engine, "load", None)
        if callable(load):
            load()
        return engine

    def check(self, request: EditRequest) -> None:
        """Validate ``request`` against the model (settings, prompt, seed) before it is queued."""
        check = getattr(self.engine, "check_request", None)
        if callable(check):
            check(request)

    async def edit(self, request: EditRequest, cost: float = 1.0) -> EditResult:
        """Queue ``request`` (weighing ``cost`` in the queue) and wait for its batch to run."""
        assert self.batcher is not None, "edit() before the engine is ready"
        return await self.batcher.submit(request, batch_key(request), cost)

    async def _run_batch(self, requests: list[EditRequest]) -> list[EditResult]:
        """Run a batch through the engine's ``edit_batch``: in the worker process, or on the pipeline thread."""
        engine = self.engine
        assert engine is not None
        loop = asyncio.get_running_loop()
        if self.worker is not None:
            try:
                return list(await loop.run_in_executor(self._pipeline_thread, self.worker.run, requests))
            except BackendError:
                if not self.worker.alive:  # the worker died (out of memory, a crash): stop taking edits
                    self.status, self.error = "failed", "the editor worker process died; restart the server"
                    log.error("editor worker process died")
                raise
        return list(await loop.run_in_executor(self._pipeline_thread, engine.edit_batch, requests))

    @property
    def queue_depth(self) -> int:
        """Return how many requests wait for the pipeline."""
        return self.batcher.depth if self.batcher else 0

    def retry_after(self) -> int:
        """Estimate when to try again, in seconds."""
        return self.batcher.retry_after() if self.batcher else 5

    def model_card(self) -> ModelCard:
        """Describe the served model: its defaults and the settings a request may change."""
        defaults: dict[str, Any] = dict(getattr(self.engine, "settings", None) or {})
        table = getattr(getattr(self.engine, "model", None), "settings", None) or {}
        return ModelCard(id=self.settings.model, created=self.created, defaults=defaults, settings=sorted(table))

    async def close(self, timeout: float) -> None:
        """Refuse new edits and finish the queued ones (within ``timeout`` s); a second call awaits the first."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close(timeout))
        await self._closing

    async def _close(self, timeout: float) -> None:
        """Drain the batcher, then stop the worker (end it at once if it still loads or a batch overran)."""
        loading = self.status == "loading"
        if self.status in ("loading", "ready"):
            self.status = "draining"
        drained = True
        if self.batcher is not None:
            log.info("draining %d queued edit(s)", self.batcher.depth)
            drained = await self.batcher.close(timeout)
        if self.worker is not None:
            if drained and not loading:  # after the last batch, on the thread that ran them
                await asyncio.get_running_loop().run_in_executor(self._pipeline_thread, self.worker.stop, 10.0)
            else:  # a load or a batch past the timeout holds the pipeline thread: end the worker from here
                self.worker.kill()
        self._pipeline_thread.shutdown(wait=False)
