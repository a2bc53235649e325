"""Filesystem races for the path tests: a folder that keeps turning into a symlink to somewhere else."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def swapping_for_symlink(real: Path, outside: Path) -> Iterator[None]:
    """Keep swapping folder ``real`` for a symlink to ``outside`` on a thread until the block ends."""
    parked = real.parent / "parked"
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            os.rename(real, parked)
            os.symlink(outside, real)
            os.unlink(real)
            os.rename(parked, real)

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    try:
        yield
    finally:
        stop.set()
        swapper.join()
