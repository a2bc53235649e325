"""Edit images with OpenAI's gpt-image models (gpt-image-1, -1.5, -1-mini) through the ``openai`` SDK.

OpenAI's ``images.edit`` for these models takes sizes from a short list, ``quality`` and (gpt-image-1)
``input_fidelity``; it always answers base64 and takes no seed and no ``response_format``, so none
is sent and each result says the seed did not reach the model. The SDK's own retries are off: ours
honour ``Retry-After`` for every provider alike.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from thinkedit.tools.config import EditorConfig, required_key
from thinkedit.tools.editors.openai_images import decode_image, image_field
from thinkedit.tools.errors import BackendError, BadInputError, problems
from thinkedit.tools.images import fit_within
from thinkedit.tools.per_loop import PerLoop
from thinkedit.tools.provider_errors import provider_error
from thinkedit.tools.retry import RetryPolicy, call_with_retries
from thinkedit.tools.store import FAST_PNG_LEVEL, to_png_bytes
from thinkedit.tools.types import EditRequest, EditResult

log = logging.getLogger(__name__)

#: Seconds one edit may take (high quality at 1536 px takes a minute or more).
DEFAULT_TIMEOUT_S = 300.0
#: The sizes gpt-image models produce, by orientation.
SIZES = {"square": "1024x1024", "landscape": "1536x1024", "portrait": "1024x1536"}


class GptImageSettings(BaseModel):
    """The gpt-image edit options we pass on (a misspelt one is an error, not ignored)."""

    model_config = ConfigDict(extra="forbid")

    size: Literal["auto", "1024x1024", "1536x1024", "1024x1536"] | None = Field(
        default=None, description="Output size; unset picks the one nearest the input's aspect ratio."
    )
    quality: Literal["low", "medium", "high", "auto"] | None = Field(default=None, description="Rendering quality.")
    input_fidelity: Literal["low", "high"] | None = Field(
        default=None, description="How closely to keep the input's details and faces (gpt-image-1)."
    )
    background: Literal["transparent", "opaque", "auto"] | None = Field(default=None, description="Background.")
    output_format: Literal["png", "jpeg", "webp"] = Field(default="png", description="Encoding of the result.")


def size_for(width: int, height: int) -> str:
    """Pick the gpt-image size nearest the input's aspect ratio (results are resized back anyway)."""
    ratio = width / height
    if ratio >= 1.25:
        return SIZES["landscape"]
    if ratio <= 0.8:
        return SIZES["portrait"]
    return SIZES["square"]


class GptImageEditor:
    """Call ``images.edit`` on OpenAI (or a server speaking its gpt-image dialect); no seed is sent."""

    #: The API has no seed: the loop's trajectory records the round's seed as not applied.
    accepts_seed = False

    def __init__(self, config: EditorConfig) -> None:
        """Check the settings and the key now, so a bad profile fails before any work starts."""
        self.config = config
        self.name = config.model
        try:
            self.options = GptImageSettings.model_validate(config.settings)
        except ValidationError as exc:
            raise BadInputError(f"invalid gpt-image settings for {config.model}: {problems(exc)}") from exc
        key_env = config.api_key_env or "OPENAI_API_KEY"
        self.api_key = required_key(key_env, f"the editor {config.model}")
        self.timeout_s = config.timeout_s or DEFAULT_TIMEOUT_S
        self.retry = RetryPolicy(attempts=config.max_attempts)
        self._clients: PerLoop[Any] = PerLoop(self._new_client)

    def _client(self) -> Any:
        """Return the ``AsyncOpenAI`` of the running event loop."""
        return self._clients.get()

    def _new_client(self) -> Any:
        """Build an ``AsyncOpenAI`` with its own retries off."""
        from openai import AsyncOpenAI

        return AsyncOpenAI(
            api_key=self.api_key, base_url=self.config.base_url, timeout=self.timeout_s, max_retries=0
        )

    def request_fields(self, request: EditRequest, size: tuple[int, int]) -> dict[str, Any]:
        """Return the edit's fields: the model, n, size and the options set (never a seed)."""
        try:
            options = GptImageSettings.model_validate({**self.options.model_dump(exclude_none=True), **request.settings})
        except ValidationError as exc:
            raise BadInputError(f"invalid gpt-image settings for {self.name}: {problems(exc)}") from exc
        fields = {k: v for k, v in options.model_dump().items() if v is not None}
        fields.setdefault("size", size_for(*size))
        return {"model": self.config.model, "n": request.num_images, **fields}

    async def edit(self, request: EditRequest) -> EditResult:
        """Send the image and instruction; decode the images and resize them to the input's size."""
        if not request.instruction.strip():
            raise BadInputError("instruction must be a non-empty string")
        original_size = request.image.size
        working = request.image.convert("RGBA" if self.options.background == "transparent" else "RGB")
        if self.config.max_side:
            working = fit_within(working, self.config.max_side)
        png = await asyncio.to_thread(to_png_bytes, working, compress_level=FAST_PNG_LEVEL)
        image = await image_field(png, request.references, self.config.max_side)
        fields = self.request_fields(request, working.size)
        started = time.perf_counter()
        response = await call_with_retries(
            lambda: self._call(image, request.instruction, fields), self.retry, what=f"editor openai:{self.name}"
        )
        seconds = time.perf_counter() - started
        images = [await asyncio.to_thread(decode_image, item.b64_json, original_size, "OpenAI") for item in response.data or []]
        if len(images) != request.num_images:
            raise BackendError(f"editor openai:{self.name} returned {len(images)} image(s) for {request.num_images}")
        usage = getattr(response, "usage", None)
        tokens = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens} if usage else {}
        log.debug("%s edited in %.2f s (%s)", self.name, seconds, tokens)
        return EditResult(images=images, model=self.name, seconds=seconds, settings=fields, seeded=False, usage=tokens)

    async def _call(self, image: Any, prompt: str, fields: dict[str, Any]) -> Any:
        try:
            return await self._client().images.edit(image=image, prompt=prompt, **fields)
        except Exception as exc:
            raise provider_error(exc, role="editor", provider="openai", model=self.name,
                                 where=self.config.base_url) from exc

