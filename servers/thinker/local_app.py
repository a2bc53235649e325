"""A small OpenAI-compatible chat server over the in-process VLM thinker, for CPUs and tests.

vLLM is the thinker server on GPUs. Where it cannot run, this app serves a local Qwen-VL model
(the tiny one included) at ``/v1/chat/completions`` with image data URLs, ``response_format``
and vLLM's ``structured_outputs`` grammar, so the HTTP thinker path runs against a real server.
(``transformers serve`` cannot serve Qwen-VL models without torchvision: its processor loads a
video processor that needs it.)

As vLLM does, it aborts a request whose client has disconnected (given up, timed out): one still
waiting for the model is dropped unrun, and a generation under way stops at its next token, so an
abandoned request does not hold up the clients behind it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from PIL.Image import Image
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from thinkedit.servers.bodylimit import BodyLimit
from thinkedit.servers.docs import install_local_docs
from thinkedit.servers.httputil import (
    APIError, BearerAuth, clip, decode_upload, install_error_handlers, until_disconnect,
)
from thinkedit.servers.thinker.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    ChatMessage,
    Choice,
    MAX_IMAGES,
    ImagePart,
    Usage,
)
from thinkedit.tools.config import ThinkerConfig
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.images import SERVER_MAX_PIXELS
from thinkedit.tools.thinkers.prompt import IMAGE_MARKER, scrub_user_text

log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"
#: The status logged for a request whose client hung up (nginx's; nothing reaches the client).
CLIENT_CLOSED = 499


class ThinkerServerSettings(BaseModel):
    """Say which local model to serve and how to guard it."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Model name (e.g. tiny-qwen2.5-vl), hub id or path to load.")
    served_model_name: str | None = Field(default=None, description="Name clients use; defaults to model.")
    path: str | None = Field(default=None, description="Local directory to load from.")
    device: str | None = Field(default=None, description="Torch device; auto when unset.")
    dtype: str | None = Field(default=None, description="Torch dtype name.")
    max_tokens: int = Field(default=1024, ge=1, description="Generation budget when a request names none.")
    max_image_side: int = Field(default=1024, gt=0, description="Downscale images to this side.")
    max_pixels: int = Field(default=SERVER_MAX_PIXELS, gt=0, description="Largest image accepted, in pixels.")
    max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0, description="Largest request body.")
    max_waiting: int = Field(default=16, ge=1, description="Requests waiting beyond this get 503.")
    token: SecretStr | None = Field(default=None, description="Bearer token every request must carry.")

    @property
    def served_name(self) -> str:
        """Return the name clients must send as ``model``."""
        return self.served_model_name or self.model


def build_engine(settings: ThinkerServerSettings) -> Any:
    """Build the in-process model that answers the chats (it loads in ``load()``)."""
    from thinkedit.tools.thinkers.vlm_runtime import VlmRuntime

    config = ThinkerConfig(
        backend="transformers",
        model=settings.model,
        path=settings.path,
        device=settings.device,
        dtype=settings.dtype,
        max_new_tokens=settings.max_tokens,
        max_image_side=settings.max_image_side,
    )
    return VlmRuntime(config)


class ChatService:
    """Hold the engine, its compiled grammars and the count of waiting requests."""

    def __init__(self, settings: ThinkerServerSettings, engine_factory: Callable[[ThinkerServerSettings], Any]) -> None:
        self.settings = settings
        self._factory = engine_factory
        self.engine: Any = None
        self.status = "loading"
        self.error: str | None = None
        self.waiting = 0
        self._grammars: OrderedDict[str, Any] = OrderedDict()
        # All model work on one thread (torch's OpenMP pool is per calling thread).
        self.model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="thinker-model")

    async def start(self) -> None:
        """Build and load the model off the event loop."""
        try:
            engine = self._factory(self.settings)
            await asyncio.get_running_loop().run_in_executor(self.model_thread, engine.load)
        except Exception as exc:  # noqa: BLE001 - reported on /health
            self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("thinker %s failed to load", self.settings.model)
            return
        self.engine, self.status = engine, "ready"
        log.info("thinker %s ready", self.settings.model)

    def grammar(self, request: ChatCompletionRequest) -> Any:
        """Return the compiled constraint the request asks for (cached), or None."""
        spec: dict[str, Any] | None = None
        if request.structured_outputs is not None:
            so = request.structured_outputs
            if so.grammar is not None:
                spec = {"ebnf": so.grammar}
            else:
                spec = {"json_schema": so.json_ if isinstance(so.json_, str) else json.dumps(so.json_)}
        elif request.response_format is not None and request.response_format.type != "text":
            rf = request.response_format
            spec = {"json_schema": json.dumps(rf.json_schema.schema_)} if rf.json_schema else {}
        if spec is None:
            return None
        key = json.dumps(spec, sort_keys=True)
        if key not in self._grammars:
            try:
                self._grammars[key] = self.engine.compile_grammar(**spec)
            except Exception as exc:  # noqa: BLE001 - xgrammar raises RuntimeError/ValueError on bad input
                raise APIError(400, f"cannot compile the requested output constraint: {exc}") from None
            while len(self._grammars) > 32:
                self._grammars.popitem(last=False)
        return self._grammars[key]


class ChatJob:
    """One chat request on its way to the model thread, which its client may abandon at any point."""

    def __init__(self, user: str | None) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.label = f"{self.id} (user {clip(user)!r})" if user else self.id  # quoted: no line breaks in the log
        self.cancel = threading.Event()  # set when the client has gone: the generation stops at its next token
        self._lock = threading.Lock()
        self._state = "waiting"  # then "running" and "done", or "dropped"

    def start(self) -> bool:
        """Mark the job running (on the model thread); False when its client left while it waited."""
        with self._lock:
            if self._state == "dropped":
                return False
            self._state = "running"
            return True

    def finish(self, generation: Any, budget: int) -> None:
        """Mark the job done (``generation`` None: it failed or never began), saying so if it was cut short."""
        with self._lock:
            self._state = "done"
            if generation is not None and generation.finish_reason == "abort":
                log.info("request %s aborted after %d of up to %d new tokens: its client disconnected",
                         self.label, generation.completion_tokens, budget)

    def abandon(self) -> None:
        """Drop the job if it has not started, else stop its generation (its client has disconnected)."""
        with self._lock:
            self.cancel.set()
            if self._state == "waiting":
                self._state = "dropped"
                log.info("request %s dropped before it ran: its client disconnected while it waited", self.label)
            elif self._state == "done":
                log.info("request %s: its reply was ready as its client disconnected, and was dropped", self.label)


def split_messages(
    messages: list[ChatMessage], max_pixels: int, specials: Sequence[str] = ()
) -> tuple[list[Image], str]:
    """Flatten system + one user turn into (images in order, text); the model sees images, then text.

    Every text part is the client's: it loses image markers, chat-template tokens and the model's
    ``specials`` (``scrub_user_text``), so only the image parts place images and the chat template
    alone opens and closes turns.
    """
    if any(m.role == "assistant" for m in messages) or sum(m.role == "user" for m in messages) != 1:
        raise APIError(422, "send system messages and exactly one user message (no multi-turn chats)", param="messages")
    count = sum(isinstance(part, ImagePart) for m in messages if not isinstance(m.content, str) for part in m.content)
    if count > MAX_IMAGES:  # counted before any is decoded: each may hold max_pixels
        raise APIError(400, f"{count} images in one request; this server takes at most {MAX_IMAGES}", param="messages")
    images: list[Image] = []
    texts: list[str] = []
    interleaved = False  # an image after some text: keep its place with an <image> marker
    for message in messages:
        parts = [message.content] if isinstance(message.content, str) else message.content
        for part in parts:
            if isinstance(part, ImagePart):
                images.append(_data_url_image(part.image_url.url, max_pixels))
                interleaved = interleaved or any(texts)
                texts.append(IMAGE_MARKER)
            else:
                text = part if isinstance(part, str) else part.text
                texts.append(scrub_user_text(text, specials))
    if not images:
        raise APIError(422, "this server critiques images: send at least one image_url part", param="messages")
    if not interleaved:
        texts = [t for t in texts if t != IMAGE_MARKER]
        return images, "\n\n".join(t for t in texts if t)
    return images, "".join(texts)


def _data_url_image(url: str, max_pixels: int) -> Image:
    """Decode a ``data:image/...;base64,`` URL; this server never fetches remote URLs."""
    head, sep, payload = url.partition(",")
    if not (sep and head.startswith("data:image/") and head.endswith(";base64")):
        raise APIError(400, "images must be base64 data URLs (data:image/png;base64,...)", param="image_url")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise APIError(400, "an image data URL holds invalid base64", param="image_url") from None
    return decode_upload(data, max_pixels, param="image_url")


def create_app(
    settings: ThinkerServerSettings, engine_factory: Callable[[ThinkerServerSettings], Any] = build_engine
) -> FastAPI:
    """Build the chat app; its lifespan loads the model in the background (/health says when)."""
    service = ChatService(settings, engine_factory)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Load the model in the background; stop the model thread on the way out."""
        loading = asyncio.create_task(service.start(), name="thinker-load")
        try:
            yield
        finally:
            loading.cancel()
            service.model_thread.shutdown(wait=False)

    app = FastAPI(title="thinkedit local thinker server", version="0.1.0", lifespan=lifespan, docs_url=None,
                  redoc_url=None)
    install_local_docs(app)  # not FastAPI's CDN page
    app.state.service = service
    install_error_handlers(app)

    @app.post(CHAT_PATH, response_model=ChatCompletion)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        """Answer one chat turn of images and text, optionally constrained to a grammar or JSON schema."""
        if service.status != "ready":
            raise APIError(503, f"model is {service.status}", type_="server_error", headers={"Retry-After": "5"})
        if body.model != settings.served_name:
            message = f"model {body.model!r} is not served here; this server serves {settings.served_name!r}"
            raise APIError(404, message, param="model", code="model_not_found")
        if service.waiting >= settings.max_waiting:
            raise APIError(503, "too many requests waiting", type_="server_error", headers={"Retry-After": "5"})
        job = ChatJob(body.user)
        service.waiting += 1
        answer = asyncio.ensure_future(_answer(service, body, job))
        hang_up = asyncio.ensure_future(until_disconnect(request))
        try:
            await asyncio.wait({answer, hang_up}, return_when=asyncio.FIRST_COMPLETED)
            if not answer.done():  # the client has gone: nothing can reach it
                job.abandon()
                return Response(status_code=CLIENT_CLOSED)
            generation = answer.result()
        finally:
            service.waiting -= 1
            for pending in (answer, hang_up):
                if not pending.done():
                    pending.cancel()  # a job still queued for the model thread leaves its queue
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await pending
        completion = ChatCompletion(
            id=job.id,
            created=int(time.time()),
            model=settings.served_name,
            choices=[
                Choice(message=AssistantMessage(content=generation.text), finish_reason=generation.finish_reason)
            ],
            usage=Usage(
                prompt_tokens=generation.prompt_tokens,
                completion_tokens=generation.completion_tokens,
                total_tokens=generation.prompt_tokens + generation.completion_tokens,
            ),
        )
        return JSONResponse(completion.model_dump())

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        """List the served model."""
        card = {"id": settings.served_name, "object": "model", "created": 0, "owned_by": "thinkedit"}
        return {"object": "list", "data": [card]}

    @app.get("/health")
    async def health() -> JSONResponse:
        """Say whether the model is loaded: 200 when ready, 503 while loading or failed."""
        body = {"status": service.status, "model": settings.served_name, "error": service.error}
        return JSONResponse(body, status_code=200 if service.status == "ready" else 503)

    token = settings.token.get_secret_value() if settings.token else None
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(BearerAuth, token=token)
    return app


async def _answer(service: ChatService, body: ChatCompletionRequest, job: ChatJob) -> Any:
    """Decode the request and generate its reply on the model thread, turning failures into HTTP errors."""
    settings = service.settings
    try:
        specials = service.engine.special_tokens()
        images, text = await asyncio.to_thread(split_messages, body.messages, settings.max_pixels, specials)
        run = functools.partial(_generate, service, body, job, images, text)
        return await asyncio.get_running_loop().run_in_executor(service.model_thread, run)
    except APIError:
        raise
    except BadInputError as exc:  # the request's fault (a grammar, a prompt): not the server's
        raise APIError(400, str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - one failed generation must not take the server down
        log.exception("generation failed")
        raise APIError(500, f"generation failed: {type(exc).__name__}: {exc}", type_="server_error") from None


def _generate(service: ChatService, body: ChatCompletionRequest, job: ChatJob, images: list[Image], text: str) -> Any:
    """Compile the request's grammar and generate (on the model thread); None for a job dropped while it waited."""
    if not job.start():
        return None
    budget = body.token_budget() or service.settings.max_tokens
    try:
        grammar = service.grammar(body)
        if job.cancel.is_set():  # the client left while the grammar compiled: no prefill for nobody
            log.info("request %s dropped before generating: its client disconnected", job.label)
            job.finish(None, budget)
            return None
        log.debug("request %s: generating up to %d new tokens", job.label, budget)
        generation = service.engine.generate(images, text, grammar=grammar, max_new_tokens=budget,
                                             temperature=body.temperature or 0.0, seed=body.seed, cancel=job.cancel)
    except BaseException:
        if job.cancel.is_set():  # nobody waits for this answer any more: its failure is logged here or nowhere
            log.exception("request %s failed after its client disconnected", job.label)
        job.finish(None, budget)
        raise
    job.finish(generation, budget)
    return generation
