"""Check edit requests and group compatible ones, before any pipeline work (no torch here)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from PIL import Image

from thinkedit.tools.editors.models import EditorModel
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.images import fit_within, resize_to
from thinkedit.tools.types import EditRequest

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
    """Scale one input image to the model's working size (bounded by ``max_side``)."""
    working = fit_within(image.convert("RGB"), max_side, model.multiple)
    if model.working_area is not None or area is not None:
        working = resize_to(working, model.working_size(working.width, working.height, area))
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
