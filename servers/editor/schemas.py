"""Wire schemas of the editor server (OpenAI Images API shapes); a misspelt field is an error, not a default."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Largest seed accepted (torch generators take 64-bit seeds; the engine adds up to n-1).
MAX_SEED = 2**63 - 1 - 16
#: Output sizes a request may ask for, per side.
MIN_SIDE, MAX_SIDE = 16, 4096


class EditForm(BaseModel):
    """Hold the text fields of ``POST /v1/images/edits`` (the image travels as a file part)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=32000, description="The edit instruction.")
    model: str | None = Field(
        default=None, max_length=256, description="Model to use; must be the served one when given."
    )
    n: int = Field(default=1, ge=1, le=16, description="How many images to make (seeds seed, seed+1, ...).")
    size: str = Field(
        default="auto", description="'auto' (the input's size) or WIDTHxHEIGHT to resize the output to."
    )
    response_format: Literal["b64_json"] = Field(
        default="b64_json", description="Only 'b64_json': images come back inline, never as URLs."
    )
    output_format: Literal["png", "jpeg", "webp"] = Field(default="png", description="Encoding of the images.")
    stream: bool = Field(default=False, description="Streaming partial images is not supported; must be false.")
    user: str | None = Field(default=None, max_length=256, description="End-user id, logged for tracing.")
    seed: int | None = Field(
        default=None, ge=0, le=MAX_SEED, description="Seed of the first image; random when unset."
    )
    # Per-model generation settings; the served model accepts a subset (see GET /v1/models).
    num_inference_steps: int | None = Field(default=None, ge=1, le=500, description="Denoising steps.")
    guidance_scale: float | None = Field(default=None, ge=0.0, le=50.0, description="Text guidance scale.")
    true_cfg_scale: float | None = Field(
        default=None, ge=0.0, le=50.0, description="True classifier-free guidance scale."
    )
    image_guidance_scale: float | None = Field(
        default=None, ge=0.0, le=50.0, description="Image guidance scale (InstructPix2Pix)."
    )
    negative_prompt: str | None = Field(default=None, max_length=2000, description="What the edit should avoid.")

    @field_validator("size")
    @classmethod
    def _check_size(cls, value: str) -> str:
        """Accept 'auto' or WIDTHxHEIGHT with each side in range."""
        if value == "auto":
            return value
        width, sep, height = value.partition("x")
        if not sep or not width.isdigit() or not height.isdigit():
            raise ValueError("size must be 'auto' or WIDTHxHEIGHT, e.g. 512x512")
        if not all(MIN_SIDE <= int(side) <= MAX_SIDE for side in (width, height)):
            raise ValueError(f"each side of size must be between {MIN_SIDE} and {MAX_SIDE}")
        return value

    @field_validator("stream")
    @classmethod
    def _no_streaming(cls, value: bool) -> bool:
        """Refuse streaming rather than silently answering in one piece."""
        if value:
            raise ValueError("streaming is not supported by this server; omit stream or send false")
        return value

    def settings(self) -> dict[str, Any]:
        """Return the per-model generation settings the client set."""
        return {name: getattr(self, name) for name in SETTING_FIELDS if getattr(self, name) is not None}

    def output_size(self) -> tuple[int, int] | None:
        """Return the requested output (width, height), or None for the input's size."""
        if self.size == "auto":
            return None
        width, _, height = self.size.partition("x")
        return int(width), int(height)


#: Form fields that are generation settings, passed to the engine (which checks them per model).
SETTING_FIELDS = ("num_inference_steps", "guidance_scale", "true_cfg_scale", "image_guidance_scale", "negative_prompt")
#: Names of the file part holding the image (the SDK uses ``image[]`` for lists).
IMAGE_FIELDS = ("image", "image[]")


class ImageData(BaseModel):
    """One output image."""

    b64_json: str = Field(description="The image, base64-encoded in the requested output format.")
    revised_prompt: str | None = Field(default=None, description="Always null: prompts are used as given.")
    seed: int = Field(description="Seed that made this image (an extension of the OpenAI shape).")


class ImagesResponse(BaseModel):
    """The body of a successful edit."""

    created: int = Field(description="Unix time the response was made.")
    data: list[ImageData]
    output_format: str = Field(description="Encoding of the images.")
    size: str = Field(description="WIDTHxHEIGHT of the images.")


class ModelCard(BaseModel):
    """One served model."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "thinkedit"
    defaults: dict[str, Any] = Field(default_factory=dict, description="The model's default generation settings.")
    settings: list[str] = Field(default_factory=list, description="Settings a request may change.")


class ModelList(BaseModel):
    """The body of ``GET /v1/models``."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    """The body of ``GET /health``."""

    status: Literal["loading", "ready", "failed", "draining"]
    model: str
    replica: str
    queue_depth: int = 0
    error: str | None = None


def edit_form_openapi() -> dict[str, Any]:
    """Describe the multipart body for the OpenAPI document (the handler parses it by hand)."""
    schema = EditForm.model_json_schema()
    schema["properties"] = {
        "image": {"type": "string", "format": "binary", "description": "The image to edit (PNG, JPEG, WebP)."},
        **schema["properties"],
    }
    schema["required"] = ["image", *schema.get("required", [])]
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}
