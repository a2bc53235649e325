"""Choose the size an editor works at: its trained area (or resolutions), aspect kept, multiples of 16.

A 12-megapixel phone photo edited at full size runs out of memory or takes minutes per edit,
and the models were trained around one megapixel, so inputs are scaled down to the model's
working area; the engines resize outputs back to the input's displayed size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Sides of every working size are multiples of this (the VAE's factor times the patch size).
MULTIPLE = 16
#: About one megapixel, the area FLUX.1 Kontext, Qwen-Image-Edit and LongCat-Image-Edit were trained at.
ONE_MEGAPIXEL = 1024 * 1024


def kontext_resolutions() -> list[tuple[int, int]]:
    """Return FLUX.1 Kontext's preferred (width, height) resolutions, as diffusers' Kontext pipeline lists them."""
    from diffusers.pipelines.flux.pipeline_flux_kontext import PREFERRED_KONTEXT_RESOLUTIONS

    return [(int(w), int(h)) for w, h in PREFERRED_KONTEXT_RESOLUTIONS]


def closest_resolution(width: int, height: int, resolutions: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """Return the resolution whose aspect ratio is closest to the input's (Kontext's own rule)."""
    aspect = width / height
    _, w, h = min((abs(aspect - w / h), w, h) for w, h in resolutions)
    return w, h


def fit_area(width: int, height: int, area: int | None, multiple: int = MULTIPLE) -> tuple[int, int]:
    """Return the size with the input's aspect and at most ``area`` pixels (never larger than the input).

    Both sides are rounded down to multiples of ``multiple`` (and at least one multiple); ``area``
    None keeps the input's size, rounded the same way.
    """
    scale = 1.0
    if area is not None and width * height > area:
        scale = math.sqrt(area / (width * height))
    w = max(multiple, int(width * scale) // multiple * multiple)
    h = max(multiple, int(height * scale) // multiple * multiple)
    return w, h
