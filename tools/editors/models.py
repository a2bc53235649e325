"""Describe each diffusers editor once: pipeline, weights, defaults and the settings users may change.

The table replaces the public code's if/elif chain of model settings: adding a model is adding an
entry. Every setting a caller passes is checked here, so a misspelt name or an out-of-range value
is an error that names the field instead of a silently ignored default.

Each model also says the size it works at: its trained area (or resolutions), aspect kept,
sides multiples of 16. A phone photo edited at full size runs out of memory or takes minutes per
edit, and the models were trained around one megapixel, so inputs are scaled down to the model's
working area; the engines resize outputs back to the input's displayed size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from thinkedit.tools.errors import BadInputError

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


@dataclass(frozen=True)
class Setting:
    """Declare one user-overridable generation setting: its type, range and pipeline argument."""

    type: type
    description: str
    ge: float | None = None
    le: float | None = None
    max_length: int | None = None
    kwarg: str | None = None  # pipeline argument name when it differs from the setting's name

    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` coerced to the setting's type, or raise ``BadInputError`` naming ``name``."""
        if self.type is str:
            if not isinstance(value, str):
                raise BadInputError(f"setting {name!r} must be a string, got {type(value).__name__}")
            if self.max_length is not None and len(value) > self.max_length:
                raise BadInputError(f"setting {name!r} is longer than {self.max_length} characters")
            return value
        # bool is an int to Python, never a sensible number of steps or scale.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadInputError(f"setting {name!r} must be a number, got {type(value).__name__}")
        if self.type is int:
            if isinstance(value, float) and not value.is_integer():
                raise BadInputError(f"setting {name!r} must be a whole number, got {value}")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise BadInputError(f"setting {name!r} must be finite, got {value}")
        if (self.ge is not None and value < self.ge) or (self.le is not None and value > self.le):
            raise BadInputError(f"setting {name!r} must be between {self.ge} and {self.le}, got {value}")
        return value


# The setting names match the pipelines' own arguments and the editor server's form fields.
STEPS = Setting(int, "Denoising steps; more is slower and usually cleaner.", ge=1, le=500)
GUIDANCE = Setting(float, "Text guidance (distilled guidance for FLUX/LongCat, CFG for SD).", ge=0.0, le=50.0)
TRUE_CFG = Setting(float, "True classifier-free guidance scale (active above 1 with a negative prompt).", ge=0.0, le=50.0)
IMAGE_GUIDANCE = Setting(float, "How closely to keep to the input image (InstructPix2Pix).", ge=0.0, le=50.0)
NEGATIVE = Setting(str, "What the edit should avoid.", max_length=2000)


def _kontext_size(width: int, height: int) -> dict[str, Any]:
    """Pin Kontext to the working size; without this it snaps inputs to its preferred ~1 MP sizes."""
    return {"height": height, "width": width, "max_area": width * height, "_auto_resize": False}


def _kontext_preferred(width: int, height: int) -> dict[str, Any]:
    """Ask Kontext for the working size; at one of its preferred resolutions, let it resize the input itself."""
    kwargs = _kontext_size(width, height)
    kwargs["_auto_resize"] = (width, height) in kontext_resolutions()
    return kwargs


def _height_width(width: int, height: int) -> dict[str, Any]:
    """Ask for an output of the working size."""
    return {"height": height, "width": width}


def _no_size(width: int, height: int) -> dict[str, Any]:
    """Pass no size: the pipeline derives its working size from the input image itself."""
    return {}


@dataclass(frozen=True)
class EditorModel:
    """Describe one diffusers editor: where its weights are and how to call its pipeline."""

    name: str
    pipeline_class: str  # attribute of the ``diffusers`` package
    hub_id: str | None  # None for locally built models
    dtype: str  # on accelerators; CPUs use float32 unless the config says otherwise
    defaults: Mapping[str, Any]
    settings: Mapping[str, Setting]
    size_kwargs: Callable[[int, int], dict[str, Any]] = _no_size
    fixed_kwargs: Mapping[str, Any] = field(default_factory=dict)  # always passed, not overridable
    # True when different images and prompts can share one call with per-image generators
    # (the output then equals the single-image edit up to float rounding, as tests/test_tiny_editors.py
    # checks for the tiny pipelines). False means one call per image.
    batchable: bool = False
    local: bool = False  # built on this machine by tools.editors.tiny rather than downloaded
    # The area (pixels) the model was trained at; inputs are scaled down to it. None: the input's
    # own size (the tiny models: the profile's max_side bounds it).
    working_area: int | None = None
    # The model's own list of trained (width, height) resolutions, when it has one (FLUX.1 Kontext).
    resolutions: Callable[[], list[tuple[int, int]]] | None = None
    working_note: str = ""  # how the working size is chosen, in words (``thinkedit models``)
    # Input images per edit: the source plus up to max_images - 1 references (Qwen-Image-Edit-2509: 3).
    max_images: int = 1
    multiple: int = 16  # sides of the working size are multiples of this (the VAE factor times 2)
    # "module:function" returning extra from_pretrained components for the weights' directory.
    components: str | None = None

    def working_size(self, width: int, height: int, area: int | None = None) -> tuple[int, int]:
        """Return the (width, height) to edit an input of this size at; ``area`` overrides the model's.

        A model with its own resolutions uses the one closest in aspect (as diffusers' Kontext
        pipeline does); otherwise the input is scaled down to the area, aspect kept. Sides are
        multiples of 16.
        """
        if area is None and self.resolutions is not None:
            return closest_resolution(width, height, self.resolutions())
        return fit_area(width, height, area or self.working_area, self.multiple)

    def check_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``settings`` validated and coerced, or raise ``BadInputError`` naming the bad field."""
        checked: dict[str, Any] = {}
        for key, value in settings.items():
            spec = self.settings.get(key)
            if spec is None:
                raise BadInputError(
                    f"unknown setting {key!r} for editor {self.name!r}; valid settings: {sorted(self.settings)}"
                )
            checked[key] = spec.check(key, value)
        return checked

    def resolve(self, *overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Return the defaults updated by each mapping of overrides in turn, all validated."""
        merged = dict(self.defaults)
        for layer in overrides:
            merged.update(self.check_settings(layer))
        return merged

    def pipeline_kwargs(self, settings: Mapping[str, Any], width: int, height: int) -> dict[str, Any]:
        """Translate resolved settings and the working size into the pipeline's call arguments."""
        kwargs = dict(self.fixed_kwargs)
        kwargs.update(self.size_kwargs(width, height))
        for key, value in settings.items():
            kwargs[self.settings[key].kwarg or key] = value
        return kwargs


def _entry(**kwargs: Any) -> EditorModel:
    """Build a table entry with read-only mappings, so no caller can change a shared default."""
    kwargs["defaults"] = MappingProxyType(dict(kwargs["defaults"]))
    kwargs["settings"] = MappingProxyType(dict(kwargs["settings"]))
    kwargs["fixed_kwargs"] = MappingProxyType(dict(kwargs.get("fixed_kwargs", {})))
    return EditorModel(**kwargs)


_KONTEXT_SETTINGS = {
    "num_inference_steps": STEPS,
    "guidance_scale": GUIDANCE,
    "true_cfg_scale": TRUE_CFG,
    "negative_prompt": NEGATIVE,
}
_QWEN_SETTINGS = {"num_inference_steps": STEPS, "true_cfg_scale": TRUE_CFG, "negative_prompt": NEGATIVE}
_PIX2PIX_SETTINGS = {
    "num_inference_steps": STEPS,
    "guidance_scale": GUIDANCE,
    "image_guidance_scale": IMAGE_GUIDANCE,
    "negative_prompt": NEGATIVE,
}

#: Every diffusers editor by name. Defaults follow the paper's settings (DESIGN §2).
EDITOR_MODELS: Mapping[str, EditorModel] = MappingProxyType(
    {
        entry.name: entry
        for entry in (
            _entry(
                name="flux-kontext-dev",
                pipeline_class="FluxKontextPipeline",
                hub_id="black-forest-labs/FLUX.1-Kontext-dev",
                dtype="bfloat16",
                defaults={"num_inference_steps": 28, "guidance_scale": 2.5},
                settings=_KONTEXT_SETTINGS,
                size_kwargs=_kontext_preferred,
                batchable=True,
                working_area=ONE_MEGAPIXEL,
                resolutions=kontext_resolutions,
                working_note="the preferred Kontext resolution closest in aspect (about 1 MP; diffusers' list)",
            ),
            # Qwen-Image-Edit resizes its conditioning image to ~1 MP itself, and the Plus pipeline
            # reads a list of images as several references for ONE prompt, so neither can batch
            # different edits into one call: they run one call per image.
            _entry(
                name="qwen-image-edit",
                pipeline_class="QwenImageEditPipeline",
                hub_id="Qwen/Qwen-Image-Edit",
                dtype="bfloat16",
                defaults={"num_inference_steps": 50, "true_cfg_scale": 4.0, "negative_prompt": " "},
                settings=_QWEN_SETTINGS,
                size_kwargs=_height_width,
                working_area=ONE_MEGAPIXEL,
                working_note="scaled down to about 1 MP, aspect kept",
            ),
            _entry(
                name="qwen-image-edit-plus",
                pipeline_class="QwenImageEditPlusPipeline",
                hub_id="Qwen/Qwen-Image-Edit-2509",
                dtype="bfloat16",
                defaults={"num_inference_steps": 50, "true_cfg_scale": 4.0, "negative_prompt": " "},
                settings=_QWEN_SETTINGS,
                size_kwargs=_height_width,
                working_area=ONE_MEGAPIXEL,
                working_note="scaled down to about 1 MP, aspect kept",
                max_images=3,
            ),
            # LongCat takes a single PIL image and works at ~1 MP whatever the input size.
            _entry(
                name="longcat-image-edit",
                pipeline_class="LongCatImageEditPipeline",
                hub_id="meituan-longcat/LongCat-Image-Edit",
                dtype="bfloat16",
                defaults={"num_inference_steps": 50, "guidance_scale": 4.5},
                settings={"num_inference_steps": STEPS, "guidance_scale": GUIDANCE, "negative_prompt": NEGATIVE},
                working_area=ONE_MEGAPIXEL,
                working_note="scaled down to about 1 MP, aspect kept (the pipeline works at ~1 MP itself)",
            ),
            # The paper ran 100 steps; 20-50 give nearly the same edits at a fraction of the cost.
            _entry(
                name="instruct-pix2pix",
                pipeline_class="StableDiffusionInstructPix2PixPipeline",
                hub_id="timbrooks/instruct-pix2pix",
                dtype="float16",
                defaults={"num_inference_steps": 50, "guidance_scale": 7.5, "image_guidance_scale": 1.5},
                settings=_PIX2PIX_SETTINGS,
                batchable=True,
                working_area=512 * 512,
                working_note="scaled down to 512x512 pixels' area (Stable Diffusion 1.5's), aspect kept",
            ),
            _entry(
                name="tiny-kontext",
                pipeline_class="FluxKontextPipeline",
                hub_id=None,
                dtype="float32",
                defaults={"num_inference_steps": 4, "guidance_scale": 2.5},
                settings=_KONTEXT_SETTINGS,
                size_kwargs=_kontext_size,
                # The tiny T5 has no use for Kontext's 512-token default.
                fixed_kwargs={"max_sequence_length": 77},
                batchable=True,
                local=True,
                working_note="the input's size (multiples of 16), bounded by the profile's max_side",
            ),
            # The tiny Plus: real QwenImageEditPlusPipeline, random weights, up to 3 input images.
            _entry(
                name="tiny-qwen-image-edit-plus",
                pipeline_class="QwenImageEditPlusPipeline",
                hub_id=None,
                dtype="float32",
                defaults={"num_inference_steps": 2, "true_cfg_scale": 4.0, "negative_prompt": " "},
                settings=_QWEN_SETTINGS,
                size_kwargs=_height_width,
                local=True,
                working_note="the input's size (multiples of 64), bounded by the profile's max_side",
                max_images=3,
                multiple=64,  # its VAE downsamples 32x
                components="thinkedit.tools.editors.tiny_qwen:components",
            ),
            _entry(
                name="tiny-pix2pix",
                pipeline_class="StableDiffusionInstructPix2PixPipeline",
                hub_id=None,
                dtype="float32",
                defaults={"num_inference_steps": 4, "guidance_scale": 7.5, "image_guidance_scale": 1.5},
                settings=_PIX2PIX_SETTINGS,
                batchable=True,
                local=True,
                working_note="the input's size (multiples of 16), bounded by the profile's max_side",
            ),
        )
    }
)


def get_model(name: str) -> EditorModel:
    """Return the table entry for ``name``, or raise ``BadInputError`` listing the known models."""
    try:
        return EDITOR_MODELS[name]
    except KeyError:
        raise BadInputError(f"unknown diffusers editor model {name!r}; choose from {sorted(EDITOR_MODELS)}") from None
