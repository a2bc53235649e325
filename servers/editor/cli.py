"""``thinkedit serve editor``: serve one editing model over the OpenAI Images API (uvicorn or Ray Serve)."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from typing import Any

from pydantic import ValidationError

from thinkedit.servers.editor.settings import SERVED_BACKENDS, EditorServerSettings
from thinkedit.servers.exposure import check_exposure, resolve_token
from thinkedit.servers.options import add_address
from thinkedit.tools.images import SERVER_MAX_PIXELS

log = logging.getLogger(__name__)

DEFAULT_PORT = 8100


def _positive_int(text: str) -> int:
    """Parse a whole number of at least 1 (argparse turns the error into exit code 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``serve editor``."""
    p = subparsers.add_parser(
        "editor",
        description="Serve one editing model at POST /v1/images/edits (plus /v1/models, /health, /metrics), "
        "with a bounded queue and micro-batching. --ray runs the same app as Ray Serve replicas.",
    )
    p.add_argument("--model", required=True, help="Model name, e.g. tiny-kontext, flux-kontext-dev, qwen-image-edit.")
    p.add_argument("--backend", choices=SERVED_BACKENDS, default="diffusers",
                   help="Editor backend: a local pipeline (default: diffusers). A hosted editor needs no server: "
                   "the loop calls it itself (--profile openai or replicate-kontext).")
    p.add_argument("--path", help="Load the weights from this directory or hub id instead of the model table's.")
    p.add_argument("--device", help="Torch device (default: cuda when present, else cpu).")
    p.add_argument("--dtype", help="Torch dtype, e.g. bfloat16 (default: per model; float32 on CPU).")
    p.add_argument("--max-side", type=_positive_int, help="Downscale inputs so the longer side is at most this.")
    add_address(p, port=DEFAULT_PORT)
    p.add_argument("--max-queue", type=_positive_int, default=64, help="Queued requests beyond this get 503 (default 64).")
    p.add_argument("--max-batch", type=_positive_int, default=8, help="Requests per pipeline call; 1 turns batching off (default 8).")
    p.add_argument("--batch-window-ms", type=float, default=5.0, help="How long a batch waits for companions (default 5 ms).")
    p.add_argument("--placement", choices=("process", "process-thread", "thread"), default="process",
                   help="Run the pipeline on the main thread of a worker process (default), on a thread of a "
                   "worker process ('process-thread'), or on a thread of the server process ('thread').")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="Largest request body in MiB (default 20).")
    p.add_argument("--max-pixels", type=_positive_int, default=SERVER_MAX_PIXELS, help=f"Largest input image in pixels (default {SERVER_MAX_PIXELS}).")
    p.add_argument("--max-input-pixels", type=_positive_int,
                   help="Most pixels per input image at the working size (default: 4x the model's working area).")
    p.add_argument("--max-output-pixels", type=_positive_int,
                   help="Most images x output pixels per request (default: max images x 4x the working area).")
    p.add_argument("--header-timeout", type=float, default=10.0, help="Seconds a client may take to send headers (default 10).")
    p.add_argument("--body-timeout", type=float, default=300.0,
                   help="Seconds a client may take to send a body (default 300; 30 s without data fails too).")
    p.add_argument("--shutdown-timeout", type=float, default=60.0, help="Seconds shutdown waits for queued edits.")
    ray = p.add_argument_group("Ray Serve")
    ray.add_argument("--ray", action="store_true", help="Serve with Ray Serve replicas instead of one uvicorn process.")
    ray.add_argument("--replicas", type=_positive_int, default=1, help="Number of replicas (default 1).")
    ray.add_argument("--num-gpus", type=float, help="GPUs per replica (default: 1 when the node has GPUs, else 0).")
    ray.add_argument("--num-cpus", type=float, help="CPUs reserved per replica (default 1 with GPUs, else 0.5).")
    ray.add_argument("--autoscale-max", type=_positive_int,
                     help="Autoscale between --replicas and this many replicas on queue length (clusters).")
    ray.add_argument("--target-ongoing-requests", type=float, default=4.0,
                     help="Autoscaling target of ongoing requests per replica (default 4).")
    ray.add_argument("--ray-address", help="Join this Ray cluster (default: start a local one with node address "
                     "127.0.0.1 and token auth; Ray's gRPC ports still listen on all interfaces, listed at start-up).")
    p.set_defaults(handler=cmd_serve_editor)


def settings_from_args(args: argparse.Namespace) -> EditorServerSettings:
    """Build the server settings from the command line (and ``$THINKEDIT_TOKEN``)."""
    return EditorServerSettings(
        model=args.model,
        backend=args.backend,
        path=args.path,
        device=args.device,
        dtype=args.dtype,
        max_side=args.max_side,
        max_queue=args.max_queue,
        max_batch=args.max_batch,
        batch_window_ms=args.batch_window_ms,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_pixels=args.max_pixels,
        max_input_pixels=args.max_input_pixels,
        max_output_pixels=args.max_output_pixels,
        bind_host=args.host,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        body_idle_timeout_s=min(30.0, args.body_timeout),
        token=resolve_token(args.token),
        shutdown_timeout_s=args.shutdown_timeout,
        watch_disconnects=not args.ray,
        placement=args.placement,
    )


def cmd_serve_editor(args: argparse.Namespace) -> int:
    """Check the options, then serve until interrupted."""
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        print(f"thinkedit: error: {exc}", file=sys.stderr)
        return 2
    refusal = check_exposure(args.host, settings.token_value)
    if refusal:
        print(f"thinkedit: error: {refusal}", file=sys.stderr)
        return 2
    if settings.backend == "diffusers":  # a misspelt model fails now, not after the server is up
        from thinkedit.tools.editors.models import get_model
        from thinkedit.tools.errors import BadInputError

        try:
            get_model(settings.model)
        except BadInputError as exc:
            print(f"thinkedit: error: {exc}", file=sys.stderr)
            return 2
    if args.ray:
        from thinkedit.servers.editor.ray_app import RayOptions, serve_with_ray

        options = RayOptions(
            replicas=args.replicas,
            num_gpus=args.num_gpus,
            num_cpus=args.num_cpus,
            autoscale_max=args.autoscale_max,
            target_ongoing_requests=args.target_ongoing_requests,
            address=args.ray_address,
        )
        return serve_with_ray(settings, args.host, args.port, options)
    return serve_with_uvicorn(settings, args.host, args.port)


def uvicorn_config(app: Any, settings: EditorServerSettings, host: str, port: int) -> Any:
    """Return uvicorn's config for the editor app: header deadline, short keep-alive, graceful shutdown."""
    import uvicorn

    from thinkedit.servers.timeouts import guarded_protocol

    metrics = app.state.metrics
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(settings.header_timeout_s, on_slow=lambda: metrics.error("slow_headers")),
        timeout_keep_alive=5,
        log_config=None,  # keep the CLI's logging setup
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout_s),  # 0: at once (None would wait forever)
        access_log=False,
    )


def editor_server(app: Any, settings: EditorServerSettings, host: str, port: int) -> Any:
    """Return the uvicorn server for the editor ``app``: ``uvicorn_config``, and shutdown drains the editor first."""
    from thinkedit.servers.editor.uvicorn_server import EditorServer

    return EditorServer(uvicorn_config(app, settings, host, port), app.state.service, settings.shutdown_timeout_s)


def serve_with_uvicorn(settings: EditorServerSettings, host: str, port: int) -> int:
    """Serve in this process; SIGINT/SIGTERM stop taking requests and finish the queued ones."""
    from thinkedit.servers.editor.app import create_app

    if settings.backend == "diffusers" and settings.placement == "thread":
        from thinkedit.tools.registry import start_parallel_runtime

        start_parallel_runtime()  # before any worker thread touches torch (a worker process needs none)

    server = editor_server(create_app(settings), settings, host, port)
    print(f"editor {settings.model} at http://{host}:{port}/v1 (loading; GET /health says when ready)",
          file=sys.stderr, flush=True)
    server.run()
    return 0
