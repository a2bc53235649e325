"""How much the command line says: from ``-v`` (or ``$THINKEDIT_LOG_LEVEL``), our logs and other libraries'.

At the default level a person sees our warnings and errors, the progress display and nothing else:
other libraries' warnings (transformers' "requires torchvision" notices, Python warnings) and their
progress bars are hidden, and their errors still shown. ``-v`` (info) shows every library's messages
at that level, ``-vv`` (debug) everything.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from thinkedit.tools.errors import BadInputError
from thinkedit.tools.secrets import SecretFilter

LOG_LEVEL_ENV = "THINKEDIT_LOG_LEVEL"
_NAMES = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
          "critical": logging.CRITICAL}
#: Set (unless the user set them) while other libraries are quiet: their progress bars and notices.
_QUIET_LIBRARIES = {
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "DIFFUSERS_VERBOSITY": "error",
}


def log_level(verbose: int, env: Mapping[str, str] | None = None) -> int:
    """Return the level: ``-v`` info, ``-vv`` debug; without ``-v``, ``$THINKEDIT_LOG_LEVEL``, else warning."""
    if verbose:
        return logging.INFO if verbose == 1 else logging.DEBUG
    text = (os.environ if env is None else env).get(LOG_LEVEL_ENV, "").strip()
    if not text:
        return logging.WARNING
    if text.lower() in _NAMES:
        return _NAMES[text.lower()]
    raise BadInputError(f"${LOG_LEVEL_ENV}={text!r} is not a log level; use one of {', '.join(_NAMES)}")


class _CurrentStderr(logging.StreamHandler):
    """Write to whatever ``sys.stderr`` is at the time (the live display swaps in one that prints above it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # type: ignore[no-untyped-def]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # type: ignore[no-untyped-def]
        pass


def configure_logging(level: int) -> None:
    """Log ours at ``level``; other libraries' warnings only at info or below (their errors always)."""
    if level > logging.INFO:
        for name, value in _QUIET_LIBRARIES.items():
            os.environ.setdefault(name, value)
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter())  # a key a provider echoed never reaches the terminal or a log file
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _CurrentStderr)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if level <= logging.INFO else max(level, logging.ERROR))
    logging.getLogger("thinkedit").setLevel(level)
    logging.captureWarnings(True)  # Python warnings become records of "py.warnings": a library's, so quiet by default
