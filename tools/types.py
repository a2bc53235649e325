"""Core data types shared by the backends and the loop (pydantic v2, JSON-serialisable).

Images are referenced, never held (``ImageRef``); a critique is a ``Verdict``; editors and thinkers
take and give the request and result dataclasses. What a round cost is a ``Usage`` (calls, images,
tokens, seconds and, from a profile's ``[pricing]``, dollars), pure data and arithmetic: the nodes
fill one per round, the trajectory adds them up, and the budget rule compares them with a ``Budget``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from thinkedit.tools.errors import BadInputError

if TYPE_CHECKING:
    from PIL.Image import Image

#: Reference images a run or an edit may bring beside the image it edits (image 2, image 3): as many as the
#: multi-image editors take (Qwen-Image-Edit-2509: three images in all).
MAX_REFERENCES = 2
#: Images one critique shows the thinker: the source, the references and the edited image.
MAX_CRITIQUE_IMAGES = MAX_REFERENCES + 2


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


class ModelPrice(BaseModel):
    """One model's list price in US dollars: per million tokens in and out, and per image edited."""

    model_config = ConfigDict(extra="forbid")

    input_per_mtok: float = Field(default=0.0, ge=0, description="USD per million input tokens.")
    output_per_mtok: float = Field(default=0.0, ge=0, description="USD per million output tokens.")
    per_image: float = Field(default=0.0, ge=0, description="USD per image edited.")


def price_for(pricing: dict[str, ModelPrice], model: str) -> ModelPrice | None:
    """Find a model's price by its configured name, else by the name after a ``provider:`` prefix."""
    return pricing.get(model) or pricing.get(model.partition(":")[2] or model)


class Usage(BaseModel):
    """Count one round's (or a run's) work and its estimated price."""

    model_config = ConfigDict(extra="forbid")

    edit_calls: int = Field(default=0, ge=0, description="Editor calls.")
    images_edited: int = Field(default=0, ge=0, description="Images the editor made.")
    critiques: int = Field(default=0, ge=0, description="Thinker calls.")
    thinker_input_tokens: int = Field(default=0, ge=0, description="Tokens the thinker read (provider usage).")
    thinker_output_tokens: int = Field(default=0, ge=0, description="Tokens the thinker wrote (provider usage).")
    editor_input_tokens: int = Field(default=0, ge=0, description="Tokens the editor billed in (gpt-image).")
    editor_output_tokens: int = Field(default=0, ge=0, description="Tokens the editor billed out (gpt-image).")
    edit_seconds: float = Field(default=0.0, ge=0, description="Wall time of the editor calls.")
    think_seconds: float = Field(default=0.0, ge=0, description="Wall time of the thinker calls.")
    cost_usd: float | None = Field(
        default=None, description="Estimated price from the profile's [pricing]; null when a model has no price."
    )
    unpriced: list[str] = Field(default_factory=list, description="Models used that have no price in [pricing].")

    @property
    def tokens(self) -> int:
        """Return every token counted, thinker and editor, in and out."""
        return (self.thinker_input_tokens + self.thinker_output_tokens
                + self.editor_input_tokens + self.editor_output_tokens)

    def priced(self, pricing: dict[str, ModelPrice], *, editor: str, thinker: str) -> Usage:
        """Return a copy with ``cost_usd`` estimated (null, and the model named, when one has no price)."""
        editor_price, thinker_price = price_for(pricing, editor), price_for(pricing, thinker)
        missing = [name for name, price in ((editor, editor_price), (thinker, thinker_price)) if price is None]
        if missing:
            return self.model_copy(update={"cost_usd": None, "unpriced": missing})
        assert editor_price is not None and thinker_price is not None
        cost = (
            self.images_edited * editor_price.per_image
            + (self.editor_input_tokens * editor_price.input_per_mtok
               + self.editor_output_tokens * editor_price.output_per_mtok) / 1e6
            + (self.thinker_input_tokens * thinker_price.input_per_mtok
               + self.thinker_output_tokens * thinker_price.output_per_mtok) / 1e6
        )
        return self.model_copy(update={"cost_usd": round(cost, 6), "unpriced": []})

    def __add__(self, other: Usage) -> Usage:
        """Add two usages; the price is known only when both are."""
        counts = {
            name: getattr(self, name) + getattr(other, name)
            for name in Usage.model_fields
            if name not in {"cost_usd", "unpriced"}
        }
        cost = None if self.cost_usd is None or other.cost_usd is None else round(self.cost_usd + other.cost_usd, 6)
        unpriced = sorted(set(self.unpriced) | set(other.unpriced))
        return Usage(**counts, cost_usd=cost, unpriced=unpriced)


def total_usage(usages: list[Usage]) -> Usage:
    """Add up rounds' usage (an empty run cost nothing)."""
    total = Usage(cost_usd=0.0)
    for usage in usages:
        total = total + usage
    return total


class Budget(BaseModel):
    """Stop the loop before a round that would spend more than this (dollars, tokens or both)."""

    model_config = ConfigDict(extra="forbid")

    usd: float | None = Field(default=None, gt=0, description="Most estimated US dollars the run may spend.")
    tokens: int | None = Field(default=None, gt=0, description="Most tokens (thinker and editor) the run may use.")

    @model_validator(mode="after")
    def _one_limit(self) -> Budget:
        if self.usd is None and self.tokens is None:
            raise ValueError("a budget needs usd or tokens")
        return self


_BUDGET = re.compile(
    r"^\s*(?P<dollar>\$)?\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<scale>[km])?\s*(?P<unit>usd|dollars?|tokens?|tok|t)?\s*$",
    re.IGNORECASE,
)


def parse_budget(text: str) -> Budget:
    """Read a budget: ``0.50``, ``$0.50`` or ``0.5usd`` in dollars; ``20000 tokens``, ``20k tokens``, ``1m tok``."""
    match = _BUDGET.match(text)
    if match is None:
        raise BadInputError(f"budget {text!r} is not dollars ('$0.50', '0.5usd') or tokens ('20000 tokens', '20k tok')")
    number = float(match["number"]) * {"k": 1e3, "m": 1e6}.get((match["scale"] or "").lower(), 1)
    unit = (match["unit"] or "").lower()
    is_tokens = unit.startswith("t")
    if match["dollar"] and is_tokens:
        raise BadInputError(f"budget {text!r} is both dollars and tokens")
    if number <= 0:
        raise BadInputError(f"budget {text!r} must be more than zero")
    return Budget(tokens=int(number)) if is_tokens else Budget(usd=number)
