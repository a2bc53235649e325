"""A baseline editor server built the way the paper's public code serves its editors, for side-by-side timing.

    PYTHONPATH=. python bench/paper_server.py --model tiny-kontext --port 8300 [--data-dir DIR]

Design (ours to write, after the description of EditThinker's servers): FastAPI, one worker process
per device with the pipeline on that process's main thread, requests handed to it over a
multiprocessing queue one at a time; no queue bound, no batching, no validation beyond decoding.
It speaks just enough of the OpenAI Images edits API (multipart in, ``b64_json`` out) for the
``openai`` SDK, so ``bench/editor_server.py`` drives it with the same client as our server. Not a
product: a yardstick.
"""

# No "from __future__ import annotations": FastAPI must see the handlers' real parameter types.

import argparse
import asyncio
import base64
import contextlib
import io
import itertools
import multiprocessing as mp
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def device_worker(model: str, data_dir: str, jobs: Any, results: Any) -> None:
    """Load the pipeline on this process's main thread, then edit one job at a time."""
    from thinkedit.tools.config import EditorConfig
    from thinkedit.tools.editors.diffusers_engine import DiffusersEditor
    from thinkedit.tools.types import EditRequest

    engine = DiffusersEditor(EditorConfig(model=model), data_dir=data_dir, max_batch_images=1)
    engine.load()
    results.put(("ready", None))
    while (job := jobs.get()) is not None:
        job_id, image, prompt, seed, settings = job
        try:
            (result,) = engine.edit_batch([EditRequest(image=image, instruction=prompt, seed=seed, settings=settings)])
            results.put((job_id, result.images[0]))
        except Exception as exc:  # noqa: BLE001 - the baseline answers 500 with the reason
            results.put((job_id, exc))


def build_app(model: str, data_dir: str) -> Any:
    """Return the FastAPI app and start its device worker."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from PIL import Image

    ctx = mp.get_context("spawn")
    jobs, results = ctx.Queue(), ctx.Queue()
    worker = ctx.Process(target=device_worker, args=(model, data_dir, jobs, results), daemon=True)
    worker.start()
    waiting: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]] = {}
    ready = threading.Event()
    ids = itertools.count()

    def deliver() -> None:
        while True:
            job_id, payload = results.get()
            if job_id == "ready":
                ready.set()
                continue
            loop, future = waiting.pop(job_id)
            loop.call_soon_threadsafe(future.set_result, payload)

    threading.Thread(target=deliver, daemon=True).start()

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        jobs.put(None)  # the worker ends after its job; a server stopped by SIGTERM must not leave it behind
        await asyncio.to_thread(worker.join, 10)
        if worker.is_alive():
            worker.kill()

    app = FastAPI(title="paper-style baseline editor server", lifespan=lifespan)

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"ready": ready.is_set()}, status_code=200 if ready.is_set() else 503)

    @app.post("/v1/images/edits")
    async def edit(request: Request) -> JSONResponse:
        form = await request.form()
        upload = form["image"]
        image = Image.open(io.BytesIO(await upload.read())).convert("RGB")  # type: ignore[union-attr]
        settings = {"num_inference_steps": int(form["num_inference_steps"])} if "num_inference_steps" in form else {}
        job_id, loop = next(ids), asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        waiting[job_id] = (loop, future)
        jobs.put((job_id, image, str(form["prompt"]), int(form.get("seed", 0)), settings))
        result = await future
        if isinstance(result, Exception):
            return JSONResponse({"error": {"message": str(result)}}, status_code=500)
        buf = io.BytesIO()
        result.resize(image.size).save(buf, format="PNG")
        return JSONResponse({"created": int(time.time()),
                             "data": [{"b64_json": base64.b64encode(buf.getvalue()).decode("ascii")}]})

    return app


def main() -> None:
    """Serve the baseline on 127.0.0.1."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-kontext")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", default=None, help="Where the tiny models are built.")
    args = parser.parse_args()
    uvicorn.run(build_app(args.model, args.data_dir), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
