"""Bound the work one edit request may ask for: input pixels per image, and images x output pixels.

A 12 KB upload can ask for eight 4096x4096 outputs (minutes of work, a 71 MB answer). The bounds
default from the model's working area (what it was trained to edit at): a request may send up to
``INPUT_FACTOR`` times that area per image (after ``--max-side`` shrinking) and ask for up to
``max_images`` x ``OUTPUT_FACTOR`` x that area in all. The same numbers weigh a request in the queue.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from thinkedit.servers.httputil import APIError

#: Working area of a model that declares none: about 1 MP, what the paper's editors work at.
DEFAULT_AREA = 1024 * 1024
#: Working area of a locally built tiny model (random weights on CPU): 512x512.
TINY_AREA = 512 * 512
INPUT_FACTOR = 4
OUTPUT_FACTOR = 4


@dataclass(frozen=True)
class WorkBudget:
    """Hold one request's limits, in pixels, and the working area they derive from."""

    area: int
    max_input_pixels: int
    max_output_pixels: int


def model_area(model: Any, max_side: int | None) -> int:
    """Return the working area of ``model`` (a models.EditorModel or None), narrowed by ``max_side``."""
    declared = getattr(model, "working_area", None)
    if declared:
        area = int(declared)
    elif getattr(model, "local", False):
        area = TINY_AREA
    else:
        area = DEFAULT_AREA
    return min(area, max_side * max_side) if max_side else area


def work_budget(area: int, max_images: int, max_input_pixels: int | None = None,
                max_output_pixels: int | None = None) -> WorkBudget:
    """Return the budget for a model of working ``area``; explicit limits win over the defaults."""
    return WorkBudget(
        area=area,
        max_input_pixels=max_input_pixels or INPUT_FACTOR * area,
        max_output_pixels=max_output_pixels or max_images * OUTPUT_FACTOR * area,
    )


def working_size(size: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """Return the size an input reaches the pipeline at (``--max-side`` shrinks it first)."""
    width, height = size
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        return max(1, round(width * scale)), max(1, round(height * scale))
    return width, height


def request_cost(budget: WorkBudget, input_size: tuple[int, int], output_size: tuple[int, int], n: int,
                 max_side: int | None = None, references: Sequence[tuple[int, int]] = ()) -> float:
    """Check one request against ``budget`` (413 naming the limit) and return its weight in working areas.

    Every input counts: the image and each reference image is held to ``max_input_pixels``, and
    all of them weigh the request, as they all go through the model.
    """
    inputs = 0
    for which, size in [("input image", input_size), *(("reference image", ref) for ref in references)]:
        width, height = working_size(size, max_side)
        if width * height > budget.max_input_pixels:
            raise APIError(
                413,
                f"{which} {size[0]}x{size[1]} is {width * height} pixels at the model's working size; the limit "
                f"is {budget.max_input_pixels} pixels per image (max_input_pixels: {INPUT_FACTOR} x the model's "
                f"working area of {budget.area} pixels). Send a smaller image or start the server with --max-side",
                param="image",
                code="work_budget_exceeded",
            )
        inputs += width * height
    out = n * output_size[0] * output_size[1]
    if out > budget.max_output_pixels:
        raise APIError(
            413,
            f"{n} image(s) of {output_size[0]}x{output_size[1]} are {out} output pixels; the limit is "
            f"{budget.max_output_pixels} per request (max_output_pixels). Ask for fewer images (n) or a smaller size",
            param="n" if n > 1 else "size",
            code="work_budget_exceeded",
        )
    return n * max(1.0, math.ceil(inputs / budget.area * 100) / 100)
