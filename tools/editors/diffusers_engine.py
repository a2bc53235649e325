"""Edit images in-process with diffusers pipelines: validate eagerly, load lazily, batch compatible edits.

Requests are checked and scaled to the model's working size before any pipeline work (no torch
for that), then grouped: requests with the same settings and size share one pipeline call.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from thinkedit.tools.config import EditorConfig
from thinkedit.tools.editors.models import EditorModel, get_model
from thinkedit.tools.errors import BackendError, BadInputError
from thinkedit.tools.extras import missing_extra
from thinkedit.tools.images import fit_within, resize_to
from thinkedit.tools.types import EditRequest, EditResult

log = logging.getLogger(__name__)

#: Most images one request may ask for (``num_images``).
MAX_IMAGES_PER_REQUEST = 16
#: Largest seed accepted; torch generators take 64-bit seeds, and we add up to K-1 to it.
MAX_SEED = 2**63 - 1 - MAX_IMAGES_PER_REQUEST

T = TypeVar("T")


@dataclass(frozen=True)
class EditJob:
    """Hold one validated request, its working image and its resolved settings."""

    index: int
    request: EditRequest
    working: Image.Image
    original_size: tuple[int, int]
    settings: dict[str, Any]
    references: tuple[Image.Image, ...] = ()  # the reference images, scaled like the source

    @property
    def images(self) -> list[Image.Image]:
        """Return the pipeline's input images: the working source, then the references."""
        return [self.working, *self.references]

    @property
    def batch_key(self) -> Hashable:
        """Return what must match for two jobs to share one pipeline call."""
        return (tuple(sorted(self.settings.items())), self.working.size)


@dataclass(frozen=True)
class EditUnit:
    """Describe one output image: which job it belongs to and the seed that makes it."""

    job: EditJob
    seed: int


def prepare_job(
    index: int,
    request: EditRequest,
    model: EditorModel,
    base_settings: dict[str, Any],
    max_side: int | None,
    working_area: int | None = None,
) -> EditJob:
    """Validate ``request`` and scale its image to the model's working size (multiples of 16).

    ``max_side`` first bounds the longer side; ``working_area`` overrides the model's area. A model
    without a working area (the tiny ones) is only cropped to multiples of 16, as before.
    """
    if not isinstance(request.image, Image.Image):
        raise BadInputError(f"request image must be a PIL image, got {type(request.image).__name__}")
    if request.image.width < 1 or request.image.height < 1:
        raise BadInputError(f"request image is empty ({request.image.width}x{request.image.height})")
    if not isinstance(request.instruction, str) or not request.instruction.strip():
        raise BadInputError("instruction must be a non-empty string")
    if isinstance(request.seed, bool) or not isinstance(request.seed, int) or not 0 <= request.seed <= MAX_SEED:
        raise BadInputError(f"seed must be an integer between 0 and {MAX_SEED}, got {request.seed!r}")
    count = request.num_images
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_IMAGES_PER_REQUEST:
        raise BadInputError(f"num_images must be an integer between 1 and {MAX_IMAGES_PER_REQUEST}, got {count!r}")
    if not isinstance(request.settings, dict):
        raise BadInputError(f"settings must be a mapping, got {type(request.settings).__name__}")
    settings = {**base_settings, **model.check_settings(request.settings)}
    references = list(request.references or [])
    if len(references) + 1 > model.max_images:
        hint = "" if model.max_images > 1 else "; use qwen-image-edit-plus for references"
        raise BadInputError(
            f"editor {model.name!r} takes {model.max_images} input image(s) per edit; got the source and "
            f"{len(references)} reference(s){hint}"
        )
    if not all(isinstance(ref, Image.Image) and ref.width > 0 and ref.height > 0 for ref in references):
        raise BadInputError("reference images must be non-empty PIL images")
    working = _working(request.image, model, max_side, working_area)
    scaled = tuple(_working(ref, model, max_side, working_area) for ref in references)
    return EditJob(index, request, working, request.image.size, settings, scaled)


def _working(image: Image.Image, model: EditorModel, max_side: int | None, area: int | None) -> Image.Image:
    """Scale one input image to the model's working size, bounded by ``max_side``.

    ``max_side`` bounds the working size too: a model's preferred size (Kontext's ~1 MP ones) that is
    larger does not scale the bounded input back up.
    """
    working = fit_within(image.convert("RGB"), max_side, model.multiple)
    if model.working_area is not None or area is not None:
        size = model.working_size(working.width, working.height, area)
        if max_side is None or max(size) <= max_side:
            working = resize_to(working, size)
    return working


def units_of(job: EditJob) -> list[EditUnit]:
    """Return the job's output images as units with seeds seed, seed+1, ..."""
    return [EditUnit(job, job.request.seed + k) for k in range(job.request.num_images)]


def group_by(items: Sequence[T], key: Callable[[T], Hashable]) -> list[list[T]]:
    """Group ``items`` by ``key``, keeping the order in which each group first appears."""
    groups: dict[Hashable, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.values())


def chunked(items: Sequence[T], size: int) -> list[list[T]]:
    """Split ``items`` into consecutive lists of at most ``size``."""
    return [list(items[i : i + size]) for i in range(0, len(items), max(1, size))]


class DiffusersEditor:
    """Serve one diffusers editing pipeline; one instance owns one loaded pipeline.

    Settings are checked when the editor is built, so a bad profile fails at start-up; the
    pipeline itself loads on first use (or on ``load()``), once, whatever the number of threads.
    Calls into the pipeline are serialised by a lock, since a pipeline is not re-entrant.
    """

    def __init__(
        self,
        config: EditorConfig,
        *,
        data_dir: str | Path | None = None,
        max_batch_images: int = 8,
    ) -> None:
        """Check ``config`` against the model table; ``max_batch_images=1`` turns batching off."""
        if max_batch_images < 1:
            raise BadInputError(f"max_batch_images must be at least 1, got {max_batch_images}")
        self.config = config
        self.model: EditorModel = get_model(config.model)
        self.name: str = self.model.name
        self.settings: dict[str, Any] = self.model.resolve(config.settings)
        self.data_dir = data_dir
        self.max_batch_images = max_batch_images
        self.device: str | None = None
        self._pipe: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    @classmethod
    def from_pipeline(cls, config: EditorConfig, pipe: Any, device: str, **options: Any) -> DiffusersEditor:
        """Wrap a pipeline already in memory (benchmarks, tests) instead of loading one.

        ``config`` is checked against the model table as usual, so ``pipe`` runs with that
        model's defaults and call arguments; ``options`` are the constructor's keywords.
        """
        editor = cls(config, **options)
        pipe.set_progress_bar_config(disable=True)
        editor._pipe, editor.device = pipe, device
        return editor

    # -- loading ---------------------------------------------------------------------------

    def source(self) -> str:
        """Return where the weights come from: the config's path, the hub id, or the local build."""
        if self.config.path:
            return self.config.path
        if self.model.local:
            from thinkedit.tools.editors.tiny import ensure_tiny_model

            return str(ensure_tiny_model(self.name, self.data_dir))
        if self.model.hub_id is None:
            raise BadInputError(f"editor {self.name!r} has no hub id; set the config's path")
        return self.model.hub_id

    def load(self) -> Any:
        """Return the pipeline, loading it on first call (thread-safe)."""
        if self._pipe is not None:
            return self._pipe
        with self._load_lock:
            if self._pipe is None:
                self._pipe = self._load()
        return self._pipe

    def _load(self) -> Any:
        try:
            import diffusers
            import torch  # noqa: F401  (fail here, clearly, when the extra is missing)
        except ModuleNotFoundError as exc:
            raise (missing_extra(exc, "the diffusers editor") or exc) from exc
        from thinkedit.tools.registry import resolve_device, resolve_dtype

        pipeline_class = getattr(diffusers, self.model.pipeline_class, None)
        if pipeline_class is None:
            raise BackendError(
                f"diffusers {diffusers.__version__} has no {self.model.pipeline_class} (needed by "
                f"{self.name!r}); upgrade diffusers"
            )
        device = resolve_device(self.config.device)
        dtype = resolve_dtype(self.config.dtype, device, default=self.model.dtype)
        source = self.source()
        log.info("loading %s (%s) from %s on %s as %s", self.name, self.model.pipeline_class, source, device, dtype)
        started = time.perf_counter()
        try:
            pipe = pipeline_class.from_pretrained(source, dtype=dtype, **self._components(source))
            pipe = pipe.to(device)
        except (OSError, ValueError) as exc:
            raise BackendError(f"cannot load editor {self.name!r} from {source!r}: {exc}") from exc
        except RuntimeError as exc:
            raise BackendError(f"cannot load editor {self.name!r} on {device}: {_describe(exc)}") from exc
        pipe.set_progress_bar_config(disable=True)
        self.device = device
        log.info("loaded %s in %.1f s", self.name, time.perf_counter() - started)
        return pipe

    def _components(self, source: str) -> dict[str, Any]:
        """Return the model's extra ``from_pretrained`` components (the tiny Qwen's processor), if any."""
        if not self.model.components:
            return {}
        import importlib

        module, attr = self.model.components.split(":")
        return getattr(importlib.import_module(module), attr)(source)

    # -- editing ---------------------------------------------------------------------------

    def check_request(self, request: EditRequest, index: int = 0) -> EditJob:
        """Validate ``request`` (image, instruction, seed, count, settings) without running it."""
        return prepare_job(index, request, self.model, self.settings, self.config.max_side, self.config.working_area)

    async def edit(self, request: EditRequest) -> EditResult:
        """Edit one request in a worker thread, so the event loop stays responsive."""
        results = await asyncio.to_thread(self.edit_batch, [request])
        return results[0]

    def edit_batch(self, requests: list[EditRequest]) -> list[EditResult]:
        """Edit many requests, sharing pipeline calls among those with equal settings and size.

        Each output image has its own generator seeded ``request.seed + k``, so a request gets
        the same images (up to float rounding) whether it runs alone or batched with others.
        ``seconds`` of a result is the wall time of the calls that made its images.
        """
        return self._edit_jobs([self.check_request(request, i) for i, request in enumerate(requests)])

    def _edit_jobs(self, jobs: list[EditJob]) -> list[EditResult]:
        """Run validated jobs, grouped by settings and size, in as few pipeline calls as allowed."""
        if not jobs:
            return []
        images: dict[int, list[Image.Image]] = {job.index: [] for job in jobs}
        seconds: dict[int, float] = {job.index: 0.0 for job in jobs}
        pipe = self.load()
        per_call = self.max_batch_images if self.model.batchable else 1
        with self._run_lock:
            for group in group_by(jobs, lambda job: job.batch_key):
                units = [unit for job in group for unit in units_of(job)]
                for chunk in chunked(units, per_call):
                    started = time.perf_counter()
                    outputs = self._run(pipe, chunk)
                    elapsed = time.perf_counter() - started
                    for unit, output in zip(chunk, outputs, strict=True):
                        images[unit.job.index].append(resize_to(output, unit.job.original_size))
                    for index in {unit.job.index for unit in chunk}:
                        seconds[index] += elapsed
        return [
            EditResult(images=images[job.index], model=self.name, seconds=seconds[job.index], settings=job.settings)
            for job in jobs
        ]

    def _run(self, pipe: Any, units: list[EditUnit]) -> list[Image.Image]:
        """Make one pipeline call for ``units``, which share settings and working size."""
        import torch

        first = units[0].job
        width, height = first.working.size
        kwargs = self.model.pipeline_kwargs(first.settings, width, height)
        # CPU generators make a seed mean the same noise on every device.
        generators = [torch.Generator("cpu").manual_seed(unit.seed) for unit in units]
        if self.model.batchable:
            kwargs.update(
                image=[unit.job.working for unit in units],
                prompt=[unit.job.request.instruction for unit in units],
                generator=generators,
            )
            if "negative_prompt" in kwargs:
                kwargs["negative_prompt"] = [kwargs["negative_prompt"]] * len(units)
        else:
            (generator,) = generators
            # A multi-image model reads a list as the source and its references for one prompt.
            image = first.images if self.model.max_images > 1 else first.working
            kwargs.update(image=image, prompt=first.request.instruction, generator=generator)
        log.debug("%s: %d image(s) at %dx%d with %s", self.name, len(units), width, height, first.settings)
        try:
            with torch.inference_mode():
                output = pipe(output_type="pil", **kwargs)
        except torch.OutOfMemoryError as exc:
            _free_accelerator_memory()
            raise BackendError(
                f"{self.name} ran out of memory on {self.device} editing {len(units)} image(s) at "
                f"{width}x{height}; lower max_side, num_images or max_batch_images"
            ) from exc
        except ValueError as exc:
            raise BadInputError(f"{self.name} rejected the request: {exc}") from exc
        except Exception as exc:  # a backend fault: report it with the model's name, keep the cause
            raise BackendError(f"{self.name} failed: {_describe(exc)}") from exc
        result = list(output.images)
        if len(result) != len(units):
            raise BackendError(f"{self.name} returned {len(result)} images for {len(units)} requested")
        return result


def _describe(exc: BaseException) -> str:
    """Return a one-line description of a backend exception, naming out-of-memory plainly."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "out of memory" in text.lower():
        return f"out of memory ({text})"
    return f"{type(exc).__name__}: {text}"


def _free_accelerator_memory() -> None:
    """Release cached accelerator memory after an out-of-memory error, so the next call can fit."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
