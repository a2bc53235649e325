"""Build the ``vllm serve`` command for a thinker model (EditThinker-8B or another Qwen-VL)."""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import sys
from dataclasses import dataclass, field

from thinkedit.tools.types import MAX_CRITIQUE_IMAGES

#: Environment variable vLLM reads its API key from (kept off the command line, out of ``ps``).
VLLM_API_KEY_ENV = "VLLM_API_KEY"


@dataclass(frozen=True)
class VllmOptions:
    """Say what to serve and how: the flags the thinker needs, plus anything extra."""

    model: str
    host: str = "127.0.0.1"
    port: int = 8000
    served_model_name: str | None = None
    max_model_len: int = 16384
    images_per_prompt: int = MAX_CRITIQUE_IMAGES  # the source, its references and the edited image
    dtype: str | None = None
    tensor_parallel_size: int | None = None
    gpu_memory_utilization: float | None = None
    extra: list[str] = field(default_factory=list)


def vllm_executable() -> list[str] | None:
    """Return how to run vLLM's CLI here, or None when vLLM is not installed."""
    path = shutil.which("vllm")
    if path:
        return [path]
    if importlib.util.find_spec("vllm") is not None:
        return [sys.executable, "-m", "vllm.entrypoints.cli.main"]
    return None


def vllm_command(options: VllmOptions, executable: list[str] | None = None) -> list[str]:
    """Return the full ``vllm serve`` argument list.

    As many images per prompt as a critique shows (the source, its references, the edited image), no
    video. Structured output is requested per request (``response_format`` / ``structured_outputs``),
    so no server flag is needed for it.
    """
    command = [*(executable or ["vllm"]), "serve", options.model]
    command += ["--host", options.host, "--port", str(options.port)]
    command += ["--served-model-name", options.served_model_name or options.model]
    command += ["--max-model-len", str(options.max_model_len)]
    command += ["--limit-mm-per-prompt", json.dumps({"image": options.images_per_prompt, "video": 0})]
    if options.dtype:
        command += ["--dtype", options.dtype]
    if options.tensor_parallel_size:
        command += ["--tensor-parallel-size", str(options.tensor_parallel_size)]
    if options.gpu_memory_utilization:
        command += ["--gpu-memory-utilization", str(options.gpu_memory_utilization)]
    return command + list(options.extra)


def describe(command: list[str], with_token: bool) -> str:
    """Return the command as a shell line, with the API key shown as a variable, never its value."""
    line = shlex.join(command)
    return f"{VLLM_API_KEY_ENV}='<token>' {line}" if with_token else line
