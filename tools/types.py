"""Core data types shared by the backends and the loop (pydantic v2, JSON-serialisable)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from PIL.Image import Image


class ImageRef(BaseModel):
    """Point at an image in the artifact store; state and checkpoints hold these, never pixels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: str = Field(description="SHA-256 of the stored PNG bytes (the content address).")
    uri: str = Field(description="Where the PNG lives: a local path or an fsspec URL.")
    width: int = Field(gt=0, description="Width in pixels.")
    height: int = Field(gt=0, description="Height in pixels.")
    media_type: str = Field(default="image/png", description="MIME type of the stored bytes.")

    @property
    def size(self) -> tuple[int, int]:
        """Return (width, height), as PIL orders them."""
        return (self.width, self.height)


class Verdict(BaseModel):
    """Hold one critique: scores, reasoning and the refined instruction, as the thinker gave them."""

    model_config = ConfigDict(extra="forbid")

    semantic: float = Field(ge=0.0, le=10.0, description="Instruction following and preservation, 0-10.")
    quality: float = Field(ge=0.0, le=10.0, description="Naturalness and absence of artifacts, 0-10.")
    reasoning: str = Field(default="", description="The thinker's reasoning.")
    refined_instruction: str = Field(default="", description="The instruction to use next.")
    satisfied: bool | None = Field(
        default=None, description="The thinker's own stop signal, for thinkers that give one."
    )
    raw: str = Field(default="", description="The thinker's raw output, kept for debugging.")
    latency_s: float = Field(default=0.0, ge=0.0, description="Seconds the thinker took.")
    input_tokens: int | None = Field(default=None, ge=0, description="Tokens the thinker read (provider usage).")
    output_tokens: int | None = Field(default=None, ge=0, description="Tokens the thinker wrote (provider usage).")
    overall: float = Field(
        default=0.0, description="Geometric mean of semantic and quality (derived; input ignored)."
    )

    @model_validator(mode="after")
    def _derive_overall(self) -> Verdict:
        """Derive ``overall`` from the two scores, as VIEScore combines them."""
        self.overall = round(math.sqrt(self.semantic * self.quality), 4)
        return self


@dataclass
class EditRequest:
    """Ask an editor for one edit of ``image`` following ``instruction``."""

    image: Image
    instruction: str
    seed: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    num_images: int = 1
    #: Further input images for editors that take several (Qwen-Image-Edit-2509: "the hat from image 2").
    references: list[Image] = field(default_factory=list)


@dataclass
class EditResult:
    """Carry an editor's output images (same size as the input) and what produced them."""

    images: list[Image]
    model: str
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)
    #: Whether the request's seed reached the model (False: the API takes none).
    seeded: bool = True
    #: Tokens the editor reported (gpt-image-1 bills by them): input_tokens, output_tokens.
    usage: dict[str, int] = field(default_factory=dict)

    @property
    def image(self) -> Image:
        """Return the first (usually only) image."""
        return self.images[0]


@dataclass
class JudgeRequest:
    """Ask a thinker to critique ``edited`` against ``source`` and the user's instruction."""

    source: Image
    edited: Image
    original_instruction: str
    current_instruction: str
    seed: int | None = None
    #: The edit's reference images; the thinker sees source, references, edited, in that order.
    references: list[Image] = field(default_factory=list)
