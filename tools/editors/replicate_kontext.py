"""Edit images with FLUX.1 Kontext hosted on Replicate, through Replicate's own Python client.

``black-forest-labs/flux-kontext-pro`` (also ``-max`` and ``-dev``) takes the prompt, the input
image (uploaded with Replicate's files API), a seed and ``aspect_ratio=match_input_image``, and
answers a URL to the result, which the client downloads. One prediction gives one image, so
best-of-K runs K predictions with seeds seed..seed+K-1. The client's own retries cover only
idempotent requests; ours retry on 429/5xx with the server's ``Retry-After``: the creation while no
prediction exists, then the status checks and the download, never a prediction that exists.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
import time
from typing import Any

from thinkedit.tools.config import EditorConfig, required_key
from thinkedit.tools.errors import BackendError, BadInputError
from thinkedit.tools.images import fit_within, load_image, resize_to
from thinkedit.tools.per_loop import PerLoop
from thinkedit.tools.provider_errors import provider_error
from thinkedit.tools.retry import RetryPolicy, call_with_retries, retry_after_seconds
from thinkedit.tools.store import FAST_PNG_LEVEL, to_png_bytes
from thinkedit.tools.types import EditRequest, EditResult

log = logging.getLogger(__name__)

#: Where Replicate's key comes from (the client's own variable).
KEY_ENV = "REPLICATE_API_TOKEN"
#: Seconds one prediction may take, waiting and polling included.
DEFAULT_TIMEOUT_S = 300.0
#: Inputs the editor sets itself; a profile's settings may not replace them.
OWN_INPUTS = frozenset({"prompt", "input_image", "seed"})
#: Prediction states that do not change any more.
TERMINAL = frozenset({"succeeded", "failed", "canceled"})
#: The Retry-After of the last response in this task (ReplicateError drops the headers).
_retry_after: contextvars.ContextVar[float | None] = contextvars.ContextVar("replicate_retry_after", default=None)


async def _note_retry_after(response: Any) -> None:
    """Keep the response's Retry-After for the error the client is about to raise."""
    _retry_after.set(retry_after_seconds(response.headers))


class ReplicateKontextEditor:
    """Run a FLUX.1 Kontext model on Replicate and return images the input's size."""

    accepts_seed = True

    def __init__(self, config: EditorConfig) -> None:
        """Check the model name, settings and key now, before any work starts."""
        if config.model.count("/") != 1:
            raise BadInputError(f"a Replicate model is named owner/name, e.g. black-forest-labs/flux-kontext-pro, "
                                f"not {config.model!r}")
        clash = OWN_INPUTS & config.settings.keys()
        if clash:
            raise BadInputError(f"settings {sorted(clash)} are set by the loop itself, not by the profile")
        self.config = config
        self.name = config.model
        key_env = config.api_key_env or KEY_ENV
        self.api_token = required_key(key_env, f"the editor {config.model}")
        self.timeout_s = config.timeout_s or DEFAULT_TIMEOUT_S
        self.retry = RetryPolicy(attempts=config.max_attempts)
        self._clients: PerLoop[Any] = PerLoop(self._new_client)

    def _client(self) -> Any:
        """Return the ``replicate.Client`` of the running event loop."""
        return self._clients.get()

    def _new_client(self) -> Any:
        """Build a ``replicate.Client`` that notes each response's ``Retry-After``."""
        import httpx
        import replicate

        timeout = httpx.Timeout(self.timeout_s, connect=10.0)
        return replicate.Client(
            api_token=self.api_token, base_url=self.config.base_url, timeout=timeout,
            event_hooks={"response": [_note_retry_after]},
        )

    def inputs(self, request: EditRequest, seed: int) -> dict[str, Any]:
        """Return the prediction's inputs except the image: prompt, seed, then the settings."""
        values: dict[str, Any] = {"aspect_ratio": "match_input_image", "output_format": "png"}
        values.update(self.config.settings)
        values.update(request.settings)
        return {**values, "prompt": request.instruction, "seed": seed}

    async def edit(self, request: EditRequest) -> EditResult:
        """Run one prediction per image asked for; download and resize each result."""
        if not request.instruction.strip():
            raise BadInputError("instruction must be a non-empty string")
        if request.references:  # Kontext on Replicate takes one input_image: a reference would be dropped
            raise BadInputError(f"editor replicate:{self.name} takes 1 input image per edit; got the source and "
                                f"{len(request.references)} reference(s); use openai-gpt-image or "
                                "qwen-image-edit-plus for references")
        original_size = request.image.size
        working = request.image.convert("RGB")
        if self.config.max_side:
            working = fit_within(working, self.config.max_side)
        png = await asyncio.to_thread(to_png_bytes, working, compress_level=FAST_PNG_LEVEL)
        started = time.perf_counter()
        tasks = [asyncio.ensure_future(self._one(png, self.inputs(request, request.seed + i), original_size))
                 for i in range(request.num_images)]
        try:
            images = await asyncio.gather(*tasks)
        except BaseException:  # one failed (or the edit was cancelled): stop the others, which cancel their predictions
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        seconds = time.perf_counter() - started
        sent = {k: v for k, v in self.inputs(request, request.seed).items() if k != "prompt"}
        return EditResult(images=list(images), model=self.name, seconds=seconds, settings=sent)

    async def _one(self, png: bytes, inputs: dict[str, Any], size: tuple[int, int]) -> Any:
        """Create one prediction, then wait for and download its result; retry each step on its own.

        A prediction is billed once it exists, so a failure after that (a status check or the download
        answering 5xx) retries the check or the download, never the prediction; one given up on is
        cancelled, so it stops running (and costing).
        """
        what = f"editor replicate:{self.name}"
        prediction = await call_with_retries(lambda: self._create(png, inputs), self.retry, what=what)
        try:
            data = await call_with_retries(lambda: self._result(prediction), self.retry, what=what)
        except BaseException:
            await self._cancel(prediction)
            raise
        return await asyncio.to_thread(_decode, data, size, self.name)

    async def _create(self, png: bytes, inputs: dict[str, Any]) -> Any:
        """Upload the image and create the prediction, waiting for it as long as the API holds the request."""
        client = self._client()
        owner, name = self.name.split("/")
        return await self._step(lambda: client.models.predictions.async_create(
            model=(owner, name), input={**inputs, "input_image": io.BytesIO(png)}, wait=True))

    async def _result(self, prediction: Any) -> bytes:
        """Poll the prediction until it ends and download its output (both safe to repeat)."""

        async def finish() -> bytes:
            if prediction.status not in TERMINAL:
                await prediction.async_wait()
            if prediction.status != "succeeded":  # the model's own failure: trying again would bill again
                raise BackendError(f"editor replicate:{self.name}: prediction {prediction.id} {prediction.status}: "
                                   f"{prediction.error or 'no output'}")
            output = prediction.output
            if isinstance(output, list):
                output = output[0] if output else None
            if output is None:
                raise BackendError(f"editor replicate:{self.name} returned no output")
            from replicate.helpers import FileOutput

            return await FileOutput(output, self._client()).aread()

        return await self._step(finish, idempotent=True)

    async def _cancel(self, prediction: Any) -> None:
        """Cancel a prediction that is still running (best effort: the edit has failed already)."""
        if prediction.status in TERMINAL:
            return
        try:
            await prediction.async_cancel()
        except Exception as exc:  # noqa: BLE001 - the error being raised matters more
            log.warning("editor replicate:%s could not cancel prediction %s: %s", self.name, prediction.id, exc)

    async def _step(self, call: Any, idempotent: bool = False) -> Any:
        """Await one request to Replicate, turning its errors into ours (transient ones with their Retry-After).

        ``idempotent``: the request is safe to repeat after its answer timed out (a status check, a download).
        """
        _retry_after.set(None)
        try:
            return await call()
        except BackendError:
            raise
        except Exception as exc:
            error = provider_error(exc, role="editor", provider="replicate", model=self.name,
                                   where=self.config.base_url, idempotent=idempotent)
            if getattr(error, "retry_after", "n/a") is None:
                error.retry_after = _retry_after.get()  # type: ignore[attr-defined]
            raise error from exc


def _decode(data: bytes, size: tuple[int, int], model: str) -> Any:
    """Decode a downloaded result and resize it to ``size``."""
    try:
        return resize_to(load_image(data, cache=False), size)
    except (ValueError, BadInputError) as exc:
        raise BackendError(f"editor replicate:{model} returned an unreadable image: {exc}") from exc
