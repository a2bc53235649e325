"""``thinkedit serve thinker``: run vLLM for the thinker model, or the local chat server (``--local``)."""

from __future__ import annotations

import argparse
import os
import sys

from thinkedit.servers.exposure import check_exposure, resolve_token
from thinkedit.servers.options import add_address
from thinkedit.servers.thinker.vllm import VLLM_API_KEY_ENV, VllmOptions, describe, vllm_command, vllm_executable

DEFAULT_PORT = 8000
DEFAULT_MODEL = "appletea2333/EditThinker-8B"

NO_VLLM = (
    "vLLM is not installed here. It serves the thinker on NVIDIA GPUs (Linux): pip install vllm, "
    "or run `thinkedit serve thinker --dry-run` to see the command. On a CPU, serve a local model "
    "instead: thinkedit serve thinker --model tiny-qwen2.5-vl --local"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``serve thinker``."""
    p = subparsers.add_parser(
        "thinker",
        description="Run `vllm serve` for the thinker with the flags it needs (four images per prompt: the source, "
        "up to two references and the edit; context length, host/port, served name). Anything after `--` goes to vLLM unchanged. --local serves a "
        "model in this process instead (CPU-friendly; for the tiny model and tests).",
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"Hub id or local model (default {DEFAULT_MODEL}).")
    add_address(p, port=DEFAULT_PORT)
    p.add_argument("--served-model-name", help="Name clients use for the model (default: --model).")
    p.add_argument("--max-model-len", type=int, default=16384, help="Context length (default 16384).")
    p.add_argument("--dtype", help="Weights dtype, e.g. bfloat16 (vLLM's default otherwise).")
    p.add_argument("--tensor-parallel-size", type=int, help="GPUs per model replica (vLLM).")
    p.add_argument("--gpu-memory-utilization", type=float, help="Fraction of GPU memory vLLM may use.")
    p.add_argument("--dry-run", action="store_true", help="Print the vLLM command instead of running it.")
    local = p.add_argument_group("local server (no vLLM)")
    local.add_argument("--local", action="store_true", help="Serve the model in this process (transformers).")
    local.add_argument("--path", help="Load the local model from this directory.")
    local.add_argument("--device", help="Torch device for --local (default: cuda when present, else cpu).")
    local.add_argument("--max-tokens", type=int, help="Default generation budget for --local (default 1024).")
    p.add_argument("vllm_args", nargs=argparse.REMAINDER, help="After --: extra arguments for vllm serve.")
    p.set_defaults(handler=cmd_serve_thinker)


def cmd_serve_thinker(args: argparse.Namespace) -> int:
    """Serve locally, print the vLLM command, or replace this process with vLLM."""
    token = resolve_token(args.token)
    refusal = check_exposure(args.host, token)
    if refusal:
        print(f"thinkedit: error: {refusal}", file=sys.stderr)
        return 2
    if args.local:
        return _serve_local(args, token)
    local_only = (("--path", args.path), ("--device", args.device), ("--max-tokens", args.max_tokens))
    given = [flag for flag, value in local_only if value is not None]
    if given:  # said, not dropped: vLLM would load the hub's model on its own device
        print(f"thinkedit: error: {', '.join(given)} apply to the local server: add --local (for vLLM, give its "
              "own options after --)", file=sys.stderr)
        return 2
    extra = [a for a in args.vllm_args if a != "--"]
    options = VllmOptions(
        model=args.model,
        host=args.host,
        port=args.port,
        served_model_name=args.served_model_name,
        max_model_len=args.max_model_len,
        dtype=args.dtype,
        tensor_parallel_size=args.tensor_parallel_size,
        gpu_memory_utilization=args.gpu_memory_utilization,
        extra=extra,
    )
    executable = vllm_executable()
    if args.dry_run:
        print(describe(vllm_command(options), with_token=bool(token)))
        return 0
    if executable is None:
        print(f"thinkedit: error: {NO_VLLM}", file=sys.stderr)
        return 1
    command = vllm_command(options, executable)
    env = dict(os.environ)
    if token:
        env[VLLM_API_KEY_ENV] = token
    print(f"running: {describe(command, with_token=bool(token))}", file=sys.stderr, flush=True)
    os.execve(command[0], command, env)  # vLLM takes over this process (and its signals)
    return 1  # not reached


def _serve_local(args: argparse.Namespace, token: str | None) -> int:
    """Serve the model in this process with uvicorn until interrupted."""
    import uvicorn

    from thinkedit.servers.thinker.local_app import ThinkerServerSettings, create_app
    from thinkedit.tools.registry import start_parallel_runtime

    if args.vllm_args or args.tensor_parallel_size or args.gpu_memory_utilization:
        print("thinkedit: error: vLLM options do not apply to --local", file=sys.stderr)
        return 2
    settings = ThinkerServerSettings(
        model=args.model,
        served_model_name=args.served_model_name,
        path=args.path,
        device=args.device,
        dtype=args.dtype,
        **({"max_tokens": args.max_tokens} if args.max_tokens is not None else {}),
        token=token,
    )
    start_parallel_runtime()  # before the model thread touches torch
    from thinkedit.servers.exposure import is_loopback
    from thinkedit.servers.httputil import HostOriginGuard
    from thinkedit.servers.timeouts import HEADER_TIMEOUT_S, BodyTimeout, guarded_protocol

    app = create_app(settings)
    app.add_middleware(BodyTimeout)
    app.add_middleware(HostOriginGuard, loopback=is_loopback(args.host))  # as the editor server: no web pages
    config = uvicorn.Config(app, host=args.host, port=args.port, log_config=None, access_log=False,
                            http=guarded_protocol(HEADER_TIMEOUT_S), timeout_keep_alive=5)
    print(f"thinker {settings.served_name} at http://{args.host}:{args.port}/v1 (loading; GET /health says when ready)",
          file=sys.stderr, flush=True)
    uvicorn.Server(config).run()
    return 0
