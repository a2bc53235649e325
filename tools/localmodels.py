"""Build locally generated models (the tiny profile) once, atomically, under the data directory."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from thinkedit.tools.config import default_data_dir

log = logging.getLogger(__name__)

#: File written last into a finished model directory; its absence means "not built".
READY_MARKER = ".thinkedit-ready"


def models_dir(data_dir: str | Path | None = None) -> Path:
    """Return the directory holding locally built models."""
    return Path(data_dir or default_data_dir()).expanduser() / "models"


def ensure_local_model(name: str, build: Callable[[Path], None], data_dir: str | Path | None = None) -> Path:
    """Return ``<data_dir>/models/<name>``, calling ``build(tmp_dir)`` first if it is not there yet.

    Building happens in a temporary sibling directory that is renamed into place when complete,
    so a crash or a concurrent builder never leaves a half-written model behind.
    """
    target = models_dir(data_dir) / name
    if (target / READY_MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        log.info("building local model %s in %s", name, target)
        build(tmp)
        (tmp / READY_MARKER).write_text("ok\n")
        if target.exists() and not (target / READY_MARKER).is_file():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process finished first; its copy is as good as ours.
            if not (target / READY_MARKER).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
