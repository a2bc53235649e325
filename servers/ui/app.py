"""The gallery's web app: run pages drawn by the shared renderer, a JSON API, SSE for live runs, uploads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from thinkedit.agent.deletion import delete_run
from thinkedit.agent.locks import RunBusyError
from thinkedit.agent.review import check_answer, review_answer
from thinkedit.agent.run_images import load_run_image
from thinkedit.agent.runs import Runner, RunRecord
from thinkedit.agent.settings import LoopSettings
from thinkedit.agent.state import ACTIVE
from thinkedit.agent.viewer import asset, content_policy, render_page, run_page_scripts
from thinkedit.servers.bodylimit import BodyLimit, size_text
from thinkedit.servers.httputil import ASGIApp, ResponseHeaders, describe_errors
from thinkedit.servers.timeouts import BodyTimeout
from thinkedit.servers.ui.auth import DEFAULT_POLICY, SECURITY_HEADERS, token_guard
from thinkedit.servers.ui.events import StreamSlots, primed, run_stream
from thinkedit.servers.ui.live_runs import GalleryJobs
from thinkedit.servers.ui.views import summary_of, view_of
from thinkedit.tools.errors import BadInputError, ImageTooLargeError
from thinkedit.tools.images import SERVER_MAX_PIXELS, load_image
from thinkedit.tools.store import FAST_PNG_LEVEL, to_png_bytes

log = logging.getLogger(__name__)

#: Room a request body has beyond the largest image: the form's text fields and multipart framing.
FORM_ALLOWANCE = 64 * 1024
#: Pages may be framed by nobody (a framing page could trick a click on Approve, Stop or Delete).
NO_FRAMING = "; frame-ancestors 'none'"


@dataclass(frozen=True)
class GalleryConfig:
    """Say where the gallery's runs live and how it starts new ones."""

    data_dir: Path
    settings: LoopSettings
    checkpoints_url: str | None = None
    artifacts_url: str | None = None
    token: str | None = None
    max_upload_bytes: int = 20 * 1024 * 1024
    #: How often a page following a run another process drives re-reads its checkpoint.
    poll_seconds: float = 1.0
    #: How many live run streams (open run pages) one client address may hold at once.
    max_streams_per_client: int = 32


class ReviewBody(BaseModel):
    """A person's answer to a paused run."""

    model_config = ConfigDict(extra="forbid")

    decision: str = Field(pattern="^(approve|edit|stop)$", description="approve, edit (with instruction) or stop.")
    instruction: str | None = Field(default=None, max_length=4000, description="The replacement, with 'edit'.")
    round: int | None = Field(default=None, ge=1, description="The round reviewed: a run paused at another gets 409.")


def _page(name: str) -> str:
    return resources.files("thinkedit.servers.ui").joinpath(f"pages/{name}").read_text("utf-8")


def _html(page: str, *scripts: str) -> HTMLResponse:
    """Answer a page whose only scripts are ``scripts`` (inline), under a policy that allows just those."""
    return HTMLResponse(page, headers={"Content-Security-Policy": content_policy(*scripts) + NO_FRAMING})


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def build_app(config: GalleryConfig) -> ASGIApp:
    """Build the gallery; the Runner opens in the lifespan, on the same stores as the CLI and MCP server."""
    state: dict[str, Any] = {}
    slots = StreamSlots(config.max_streams_per_client)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            runner = await stack.enter_async_context(
                Runner.open(config.data_dir, checkpoints=config.checkpoints_url, artifacts=config.artifacts_url)
            )
            state["runner"], state["jobs"] = runner, GalleryJobs(runner, config.data_dir / "outputs")
            log.info("thinkedit gallery ready: runs in %s", runner.registry.url)
            try:
                yield
            finally:
                await state["jobs"].close()

    app = FastAPI(title="thinkedit gallery", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.middleware("http")(token_guard(config.token))
    # Outside the token check: a body past the image and its form fields is cut off as it arrives.
    app.add_middleware(BodyLimit, limit=config.max_upload_bytes + FORM_ALLOWANCE, render=lambda m: {"error": m},
                       setting=f"an image of up to {size_text(config.max_upload_bytes)} and its form fields")
    app.add_middleware(BodyTimeout, render=lambda m: {"error": m})  # an upload that stalls gets 408

    def runner() -> Runner:
        return state["runner"]

    def jobs() -> GalleryJobs:
        return state["jobs"]

    def record(run_id: str) -> RunRecord:
        try:
            return runner().registry.load(run_id)
        except BadInputError as exc:
            raise HTTPException(404 if "unknown run id" in str(exc) else 400, str(exc)) from exc

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(BadInputError)
    async def bad_input(_: Request, exc: BadInputError) -> JSONResponse:
        # Another process drives the run: a conflict, as for a live run here; too many pixels: too large.
        status = 409 if isinstance(exc, RunBusyError) else 413 if isinstance(exc, ImageTooLargeError) else 400
        return _error(status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, describe_errors(exc.errors())[0])  # the gallery's one error shape, naming the field

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/")
    async def gallery() -> HTMLResponse:
        # The renderer's script comes along for its formats (numbers, times, round counts): one for every view.
        renderer, script = asset("run.js"), _page("gallery.js")
        page = _page("gallery.html").replace("/*RUN_JS*/", renderer).replace("/*GALLERY_JS*/", script)
        return _html(page, renderer, script)

    @app.get("/runs/{run_id}")
    async def run_page(run_id: str) -> HTMLResponse:
        rec = record(run_id)
        view = await view_of(runner(), rec, live=jobs().is_live(run_id), progress=jobs().progress(run_id), prefix="../")
        feed = _page("run-feed.js")
        return _html(render_page(view, title=f"thinkedit run {run_id}", feed=feed), *run_page_scripts(feed))

    @app.get("/api/runs")
    async def list_runs() -> dict[str, Any]:
        records = runner().registry.list()[:200]
        return {"runs": [await summary_of(runner(), r, live=jobs().is_live(r.run_id)) for r in records]}

    @app.get("/api/runs/{run_id}")
    async def get_run(run_id: str) -> dict[str, Any]:
        rec = record(run_id)
        return await view_of(runner(), rec, live=jobs().is_live(run_id), progress=jobs().progress(run_id), prefix="../")

    @app.get("/api/runs/{run_id}/events")
    async def run_events(run_id: str, request: Request) -> StreamingResponse:
        record(run_id)

        async def view(rec: RunRecord, live: bool) -> dict[str, Any]:
            return await view_of(runner(), rec, live=live, progress=jobs().progress(run_id), prefix="../")

        stream = await primed(run_stream(
            request, slots, lambda: runner().registry.load(run_id), view, lambda: jobs().is_live(run_id),
            lambda: jobs().wait_change(run_id, config.poll_seconds),
        ))
        return StreamingResponse(stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.get("/api/runs/{run_id}/images/{name}.png")
    async def run_image(run_id: str, name: str, w: int | None = None) -> Response:
        rec = record(run_id)
        if w is not None and not 16 <= w <= 4096:
            raise BadInputError("w must be between 16 and 4096 pixels")
        ref = await load_run_image(runner(), rec, name)

        def read() -> bytes:
            if w is None:
                return runner().store.read_bytes(ref)
            picture = runner().store.get(ref)
            picture.thumbnail((w, w), Image.Resampling.LANCZOS)
            return to_png_bytes(picture, compress_level=FAST_PNG_LEVEL)

        body = await asyncio.to_thread(read)
        return Response(body, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})

    @app.post("/api/runs", status_code=201)
    async def start_run(request: Request) -> dict[str, str]:
        try:
            form = await request.form(max_files=1, max_fields=8, max_part_size=64 * 1024)
        except HTTPException as exc:
            raise HTTPException(400, f"malformed upload: {exc.detail}") from None
        try:
            upload, instruction = form.get("image"), str(form.get("instruction") or "").strip()
            if not isinstance(upload, UploadFile):
                raise BadInputError("choose an image to edit (form field 'image')")
            if not instruction:
                raise BadInputError("write an instruction (form field 'instruction')")
            data = await upload.read()
            filename = Path(upload.filename or "upload").name[:120]
            overrides = {"max_rounds": form.get("max_rounds") or None, "review": form.get("review") in ("on", "true", "1")}
        finally:
            await form.close()
        if len(data) > config.max_upload_bytes:
            raise HTTPException(413, f"upload larger than {size_text(config.max_upload_bytes)}")
        try:
            settings = config.settings.model_copy(update={"review": overrides["review"]})
            if overrides["max_rounds"]:
                settings = settings.updated(max_rounds=overrides["max_rounds"])
        except ValidationError as exc:
            raise BadInputError(f"bad setting: {exc.errors()[0]['loc'][0]} {exc.errors()[0]['msg']}") from None
        picture = await asyncio.to_thread(load_image, data, max_pixels=SERVER_MAX_PIXELS, label=filename)  # as a server
        rec = await asyncio.to_thread(runner().prepare, picture, instruction, settings, source_name=filename)
        jobs().start(rec)
        return {"run_id": rec.run_id, "url": f"runs/{rec.run_id}"}

    @app.post("/api/runs/{run_id}/review")
    async def review_run(run_id: str, body: ReviewBody) -> dict[str, str]:
        rec = record(run_id)
        if rec.status != "awaiting_review" or jobs().is_live(run_id):
            raise HTTPException(409, f"run {run_id} is not awaiting review (its status is {rec.status})")
        if await jobs().running_elsewhere(run_id):
            raise HTTPException(409, f"run {run_id} is being driven by another thinkedit process")
        try:  # now, so the page hears of a late answer (the Runner checks it again under the run's lock)
            check_answer(run_id, rec.status, await runner().pending_review(run_id), body.round)
        except BadInputError as exc:
            raise HTTPException(409, str(exc)) from None
        jobs().review(rec, review_answer(body.decision, body.instruction), pending_round=body.round)  # type: ignore[arg-type]
        return {"run_id": run_id, "status": "running"}

    @app.post("/api/runs/{run_id}/cancel")
    async def cancel_run(run_id: str) -> dict[str, str]:
        rec = await jobs().cancel_run(record(run_id).run_id)
        jobs().changed(run_id)
        return {"run_id": run_id, "status": rec.status}

    @app.delete("/api/runs/{run_id}")
    async def remove_run(run_id: str) -> dict[str, Any]:
        rec = record(run_id)
        if jobs().is_live(run_id) or rec.status in ACTIVE:
            raise HTTPException(409, f"run {run_id} is {rec.status.replace('_', ' ')}: cancel it before deleting it")
        gone = await delete_run(runner(), run_id, config.data_dir / "outputs")
        jobs().changed(run_id)
        return {"run_id": run_id, "deleted": True, "images_deleted": gone.images_deleted,
                "images_kept": gone.images_kept, "files_deleted": gone.files_deleted}

    # Outermost, past FastAPI's own error middleware: a 413 or a 500 carries the headers every answer does.
    return ResponseHeaders(app, {**SECURITY_HEADERS, "Content-Security-Policy": DEFAULT_POLICY})
