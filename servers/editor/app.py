"""The editor server's FastAPI app: OpenAI Images edits, models, health and metrics over one engine."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from thinkedit.servers.docs import install_local_docs
from thinkedit.servers.editor.batching import QueueFullError, ShuttingDownError
from thinkedit.servers.editor.budget import request_cost
from thinkedit.servers.editor.settings import EditorServerSettings
from thinkedit.servers.editor.metrics import EditorMetrics
from thinkedit.servers.editor.schemas import Health, ImageData, ImagesResponse, ModelList, edit_form_openapi
from thinkedit.servers.editor.service import EditorService, EngineFactory, build_engine
from thinkedit.servers.editor.uploads import ClientGone, EditUpload, read_edit_upload
from thinkedit.servers.bodylimit import BodyLimit
from thinkedit.servers.exposure import is_loopback
from thinkedit.servers.httputil import (
    INVALID_IMAGE,
    APIError,
    BearerAuth,
    HostOriginGuard,
    ResponseHeaders,
    clip,
    decode_upload,
    install_error_handlers,
    until_disconnect,
)
from thinkedit.servers.timeouts import BodyTimeout
from thinkedit.tools.errors import BackendError, BadInputError
from thinkedit.tools.images import resize_to
from thinkedit.tools.store import FAST_PNG_LEVEL, to_png_bytes
from thinkedit.tools.types import EditRequest, EditResult

log = logging.getLogger(__name__)

EDITS_PATH = "/v1/images/edits"
#: Header naming the replica that answered (how a client sees Ray Serve spread its requests).
REPLICA_HEADER = "x-thinkedit-replica"
_ERROR_KIND = {400: "bad_request", 413: "too_large", 422: "validation", 404: "validation", 408: "timeout"}
#: Status logged (never sent: the client is gone) for an upload its client abandoned.
CLIENT_CLOSED = 499


def create_app(settings: EditorServerSettings, engine_factory: EngineFactory = build_engine) -> FastAPI:
    """Build the app; its lifespan loads the engine in the background and drains the queue on shutdown."""
    metrics = EditorMetrics(settings.model, settings.replica_id)
    service = EditorService(settings, metrics, engine_factory)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Load the engine (in the background unless told otherwise); drain the queue on the way out."""
        loading: asyncio.Task[None] | None = None
        if settings.load_in_background:
            loading = asyncio.create_task(service.start(), name="editor-load")
        else:
            await service.start()
        try:
            yield
        finally:
            if loading is not None and not loading.done():
                loading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loading
            await service.close(settings.shutdown_timeout_s)  # under uvicorn, EditorServer began it already

    app = FastAPI(
        title="thinkedit editor server",
        description="OpenAI Images edits API over one image-editing model, with a queue and micro-batching.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN; ours serves it locally
        redoc_url=None,
    )
    install_local_docs(app)
    app.state.service = service
    app.state.metrics = metrics

    install_error_handlers(app)

    @app.post(EDITS_PATH, response_model=ImagesResponse, openapi_extra=edit_form_openapi())
    async def create_edit(request: Request) -> JSONResponse:
        """Edit one image as the OpenAI Images API does; extra fields set seed and model settings."""
        started = time.perf_counter()
        try:
            body = await _edit(request, service, settings)
        except ClientGone:
            # An abandoned upload is the client's business: count it, no traceback, nothing to send.
            metrics.requests.labels(status=str(CLIENT_CLOSED)).inc()
            metrics.error("disconnected")
            return Response(status_code=CLIENT_CLOSED)
        except APIError as exc:
            metrics.requests.labels(status=str(exc.status)).inc()
            if exc.status in _ERROR_KIND:
                metrics.error("bad_image" if exc.code == INVALID_IMAGE else _ERROR_KIND[exc.status])
            raise
        metrics.requests.labels(status="200").inc()
        metrics.latency.observe(time.perf_counter() - started)
        return JSONResponse(body.model_dump())

    @app.get("/v1/models", response_model=ModelList)
    async def list_models() -> ModelList:
        """List the served model (with its settings once it is loaded)."""
        return ModelList(data=[service.model_card()])

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    async def health() -> JSONResponse:
        """Say whether the server takes edits: 200 when ready, 503 while loading, draining or failed."""
        body = Health(
            status=service.status,
            model=settings.model,
            replica=settings.replica_id,
            queue_depth=service.queue_depth,
            error=service.error,
        )
        return JSONResponse(body.model_dump(), status_code=200 if service.status == "ready" else 503)

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        """Expose queue depth, batch sizes, latencies and error counts for Prometheus."""
        return Response(metrics.render(), media_type=metrics.content_type)

    def count_unseen(path: str) -> None:  # an edit refused on its Content-Length alone never reaches create_edit
        if path == EDITS_PATH:
            metrics.requests.labels(status="413").inc()
            metrics.error("too_large")

    # Outermost last: replica header on every response, then Host/Origin, auth, body timeouts and limit.
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes, setting="--max-upload-mb", on_unseen=count_unseen)
    app.add_middleware(BodyTimeout, idle_timeout=settings.body_idle_timeout_s, total_timeout=settings.body_timeout_s)
    app.add_middleware(BearerAuth, token=settings.token_value, on_reject=lambda: metrics.error("unauthorized"))
    app.add_middleware(
        HostOriginGuard, loopback=is_loopback(settings.bind_host), on_reject=lambda what: metrics.error(f"forbidden_{what}")
    )
    app.add_middleware(ResponseHeaders, headers={REPLICA_HEADER: settings.replica_id})
    return app


def _not_ready(service: EditorService) -> APIError:
    """Explain why no edit is taken now, with a time to come back."""
    message = {
        "loading": "the model is still loading",
        "draining": "the server is shutting down",
        "failed": f"the model failed to load: {service.error}",
    }.get(service.status, service.status)
    service.metrics.error("not_ready")
    return APIError(503, message, type_="server_error", code="not_ready", headers={"Retry-After": "5"})


async def _edit(request: Request, service: EditorService, settings: EditorServerSettings) -> ImagesResponse:
    """Parse, check, queue and answer one edit request."""
    if service.status != "ready":
        raise _not_ready(service)
    upload = await read_edit_upload(request)
    form = upload.form
    if form.model is not None and form.model != settings.model:
        raise APIError(
            404, f"model {clip(form.model)!r} is not served here; this server serves {settings.model!r}",
            param="model", code="model_not_found",
        )
    if form.n > settings.max_images:
        raise APIError(422, f"field 'n': at most {settings.max_images} images per request", param="n")
    edit_request, cost = await asyncio.to_thread(_prepare, upload, service, settings)
    if form.user:
        log.info("edit for user %s: seed %d, n %d", clip(form.user), edit_request.seed, form.n)
    result = await _run_watching(request, service, edit_request, cost, settings.watch_disconnects)
    return await asyncio.to_thread(_respond, result, edit_request, upload)


def _prepare(upload: EditUpload, service: EditorService, settings: EditorServerSettings) -> tuple[EditRequest, float]:
    """Decode the image, check the request against the model and its work budget (off the event loop)."""
    image = decode_upload(upload.image_bytes, settings.max_pixels)
    references = [decode_upload(data, settings.max_pixels) for data in upload.reference_bytes]
    form = upload.form
    cost = request_cost(service.budget, image.size, form.output_size() or image.size, form.n, settings.max_side,
                        references=[ref.size for ref in references])
    seed = form.seed if form.seed is not None else secrets.randbelow(2**31)
    request = EditRequest(image=image, instruction=form.prompt, seed=seed, settings=form.settings(), num_images=form.n,
                          references=references)
    try:
        service.check(request)
    except BadInputError as exc:
        raise APIError(422, str(exc)) from None
    return request, cost


async def _run_watching(
    request: Request, service: EditorService, edit: EditRequest, cost: float, watch: bool
) -> EditResult:
    """Run the edit; if the client hangs up first, withdraw it from the queue."""
    task = asyncio.ensure_future(_submit(service, edit, cost))
    watcher = asyncio.ensure_future(until_disconnect(request)) if watch else None
    try:
        waiting = {task, watcher} if watcher else {task}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if task not in done:
            raise APIError(499, "client closed the request", code="client_closed")
        return task.result()
    finally:
        for pending in (task, watcher):
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending


async def _submit(service: EditorService, edit: EditRequest, cost: float) -> EditResult:
    """Queue the edit, turning each failure into the HTTP error the client should see."""
    try:
        return await service.edit(edit, cost)
    except QueueFullError as exc:
        service.metrics.error("queue_full")
        raise APIError(
            503, str(exc), type_="server_error", code="queue_full", headers={"Retry-After": str(exc.retry_after)}
        ) from None
    except ShuttingDownError as exc:
        raise APIError(503, str(exc), type_="server_error", code="not_ready", headers={"Retry-After": "5"}) from None
    except BadInputError as exc:
        raise APIError(400, str(exc)) from None
    except BackendError as exc:
        service.metrics.error("backend")
        raise APIError(500, str(exc), type_="server_error", code="backend_error") from None
    except Exception as exc:  # noqa: BLE001 - one failed edit must not take the server down
        service.metrics.error("backend")
        log.exception("edit failed")
        raise APIError(500, f"edit failed: {type(exc).__name__}: {exc}", type_="server_error") from None


def _respond(result: EditResult, request: EditRequest, upload: EditUpload) -> ImagesResponse:
    """Encode the images in the requested format and size."""
    form = upload.form
    size = form.output_size() or request.image.size
    fmt = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[form.output_format]
    data = []
    for k, image in enumerate(result.images):
        picture = resize_to(image, size).convert("RGB")
        if fmt == "PNG":
            encoded = to_png_bytes(picture, compress_level=FAST_PNG_LEVEL)
        else:
            buf = io.BytesIO()
            picture.save(buf, format=fmt)
            encoded = buf.getvalue()
        data.append(ImageData(b64_json=base64.b64encode(encoded).decode("ascii"), seed=request.seed + k))
    return ImagesResponse(
        created=int(time.time()), data=data, output_format=form.output_format, size=f"{size[0]}x{size[1]}"
    )
