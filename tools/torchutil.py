"""Pick torch devices and dtypes; imported only by in-process backends (torch is optional)."""

from __future__ import annotations

from typing import Any


def resolve_device(name: str | None) -> str:
    """Return ``name`` or the best device available ('cuda', 'mps', else 'cpu')."""
    import torch

    if name:
        return name
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(name: str | None, device: str, default: str = "bfloat16") -> Any:
    """Return the torch dtype named ``name``; float32 on CPU unless asked otherwise."""
    import torch

    chosen = name or ("float32" if device == "cpu" else default)
    dtype = getattr(torch, chosen, None)
    if not isinstance(dtype, torch.dtype):
        from thinkedit.tools.errors import BadInputError

        raise BadInputError(f"unknown torch dtype {chosen!r}")
    return dtype


def start_parallel_runtime() -> None:
    """Run one small parallel op on the calling (main) thread, so OpenMP starts its runtime there.

    With the CPU build of torch, when a process's first OpenMP region runs on a worker thread,
    later ops on worker threads run many times slower than after one op on the main thread.
    Servers run models on worker threads, so they call this first.
    """
    import torch

    ones = torch.ones(64, 64)
    torch.mm(ones, ones)
