"""Edit images through any server speaking the OpenAI Images edits API, with the ``openai`` SDK.

That covers our own editor server (``thinkedit serve editor``), vLLM-Omni (which serves FLUX.1
Kontext, Qwen-Image-Edit, OmniGen2 and LongCat-Image-Edit at ``/v1/images/edits``) and hosted
OpenAI-compatible image APIs that take a seed. The seed and the config's settings travel as extra
form fields, and ``response_format=b64_json`` is asked for. OpenAI's own API takes neither: its
gpt-image models have their own backend, ``openai-gpt-image`` (``thinkedit.tools.editors.gpt_image``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from thinkedit.tools.config import EditorConfig, required_key
from thinkedit.tools.errors import BackendError, BadInputError, TransientBackendError
from thinkedit.tools.images import fit_within, load_image, resize_to
from thinkedit.tools.per_loop import PerLoop
from thinkedit.tools.provider_errors import answer_timed_out, edit_timed_out
from thinkedit.tools.retry import RetryPolicy, call_with_retries, retry_after_seconds
from thinkedit.tools.store import FAST_PNG_LEVEL, to_png_bytes
from thinkedit.tools.types import EditRequest, EditResult

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

#: API key sent to servers that need none (ours on loopback, vLLM without --api-key).
PLACEHOLDER_API_KEY = "not-needed"
#: Our servers' bearer token, sent when the config names no key variable of its own.
TOKEN_ENV = "THINKEDIT_TOKEN"
#: Seconds one edit may take before the call counts as failed (and is retried as transient).
DEFAULT_TIMEOUT_S = 600.0


class OpenAIImagesEditor:
    """Call ``images.edit`` on an OpenAI-compatible server and return images the input's size."""

    def __init__(self, config: EditorConfig) -> None:
        """Check the config; the HTTP client is made on first use, in the event loop that uses it.

        A call may take ``timeout_s`` (else ``DEFAULT_TIMEOUT_S``) and is made ``max_attempts`` times in
        all on a transient failure, waiting as the server's Retry-After asks; the SDK itself never retries.
        """
        self.config = config
        self.name = config.model
        self.timeout_s = config.timeout_s or DEFAULT_TIMEOUT_S
        self.retry = RetryPolicy(attempts=config.max_attempts)
        if config.base_url is None or urlsplit(config.base_url).hostname == "api.openai.com":
            # api.openai.com rejects fields it does not know (seed) and response_format for gpt-image models.
            raise BadInputError(
                "OpenAI's own image API takes no seed or response_format: use editor backend 'openai-gpt-image' "
                "(the openai profile); 'openai-images' is for servers such as thinkedit serve editor or vLLM-Omni"
            )
        self.api_key = self._api_key(config)
        self._clients: PerLoop[Any] = PerLoop(self._new_client)

    @staticmethod
    def _api_key(config: EditorConfig) -> str:
        """Return the key from ``api_key_env``, else our token or a placeholder for keyless local servers."""
        if config.api_key_env:
            return required_key(config.api_key_env, f"the editor {config.model}")
        return os.environ.get(TOKEN_ENV) or PLACEHOLDER_API_KEY

    def _client(self) -> Any:
        """Return the ``AsyncOpenAI`` of the running event loop."""
        return self._clients.get()

    def _new_client(self) -> Any:
        """Build an ``AsyncOpenAI`` with this editor's timeout (``call_with_retries`` does the retrying)."""
        from openai import AsyncOpenAI

        return AsyncOpenAI(api_key=self.api_key, base_url=self.config.base_url, timeout=self.timeout_s, max_retries=0)

    def form_fields(self, request: EditRequest) -> dict[str, Any]:
        """Return the extra form fields: the seed, then the config's settings, then the request's."""
        fields: dict[str, Any] = {"seed": request.seed}
        fields.update(self.config.settings)
        fields.update(request.settings)
        return fields

    async def edit(self, request: EditRequest) -> EditResult:
        """Send the image and instruction; decode the base64 images and resize them to the input's size."""
        if not request.instruction.strip():
            raise BadInputError("instruction must be a non-empty string")
        original_size = request.image.size
        working = request.image
        if self.config.max_side:
            working = fit_within(working.convert("RGB"), self.config.max_side)
        # Our own and self-hosted servers sit on a local link: encoding time counts more than bytes.
        png = await asyncio.to_thread(to_png_bytes, working, compress_level=FAST_PNG_LEVEL)
        kwargs: dict[str, Any] = {
            "image": await image_field(png, request.references, self.config.max_side),
            "prompt": request.instruction,
            "model": self.config.model,
            "n": request.num_images,
            "extra_body": self.form_fields(request),
            "response_format": "b64_json",
        }
        started = time.perf_counter()
        response = await call_with_retries(lambda: self._call(kwargs), self.retry, what=f"editor {self.name}")
        seconds = time.perf_counter() - started
        images = [await asyncio.to_thread(decode_image, item.b64_json, original_size) for item in response.data or []]
        if len(images) != request.num_images:
            raise BackendError(f"the editor server returned {len(images)} image(s) for {request.num_images} requested")
        log.debug("%s edited via %s in %.2f s", self.name, self.config.base_url, seconds)
        return EditResult(images=images, model=self.name, seconds=seconds, settings=self.form_fields(request))


    async def _call(self, kwargs: dict[str, Any]) -> Any:
        """Make one ``images.edit`` call, sorting its failure into transient or not (``_status_error``)."""
        import openai

        try:
            return await self._client().images.edit(**kwargs)
        except openai.APIStatusError as exc:
            raise _status_error(exc, self.config.base_url) from exc
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            if answer_timed_out(exc):  # the server has the edit and may still make it: another would queue behind
                raise edit_timed_out(f"the editor server at {self.config.base_url or 'api.openai.com'}", exc) from exc
            raise TransientBackendError(
                f"cannot reach the editor server at {self.config.base_url or 'api.openai.com'}: {exc}"
            ) from exc


def decode_image(b64: str | None, size: tuple[int, int], who: str = "the editor server") -> Any:
    """Decode one base64 image of an Images API response (``who`` sent it) and resize it to ``size``."""
    if not b64:
        raise BackendError(f"{who} returned an image without b64_json data")
    try:
        return resize_to(load_image(base64.b64decode(b64, validate=True), cache=False), size)
    except (ValueError, BadInputError) as exc:
        raise BackendError(f"{who} returned an unreadable image: {exc}") from exc


def _server_message(exc: Any) -> str:
    """Return the server's own error message (OpenAI error shape), else the SDK's."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body["error"] if isinstance(body.get("error"), dict) else body
        if inner.get("message"):
            return str(inner["message"])
    return str(getattr(exc, "message", exc))


async def image_field(png: bytes, references: Sequence[Image], max_side: int | None) -> Any:
    """Return the edits API's ``image``: the source PNG, then each reference as PNG bounded by ``max_side``.

    With references, the SDK sends them all as repeated ``image[]`` parts, named in order (image 2, 3, ...).
    """
    source = ("image.png", png, "image/png")
    if not references:
        return source

    def encode(image: Image) -> bytes:
        image = image.convert("RGB")
        return to_png_bytes(fit_within(image, max_side) if max_side else image, compress_level=FAST_PNG_LEVEL)

    pngs = [await asyncio.to_thread(encode, ref) for ref in references]
    return [source, *((f"reference-{i}.png", data, "image/png") for i, data in enumerate(pngs, 2))]


def _status_error(exc: Any, base_url: str | None) -> Exception:
    """Map an HTTP error: 408/409/429/5xx are transient; other 4xx are the request's fault or the setup's."""
    status = int(exc.status_code)
    message = f"editor server {base_url or 'api.openai.com'} answered {status}: {_server_message(exc)}"
    if status in (408, 409, 429) or status >= 500:
        headers = getattr(getattr(exc, "response", None), "headers", None)
        return TransientBackendError(message, retry_after=retry_after_seconds(headers))
    if status in (400, 413, 422):
        return BadInputError(message)
    return BackendError(message)  # 401/403 (key), 404 (model or URL): retrying will not help
