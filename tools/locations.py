"""Where runs live when no option says: the data directory and the storage URL variables.

Standard library only, so command-line modules can name them without importing pydantic.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variables that choose where runs live when no option says.
CHECKPOINT_URL_ENV = "THINKEDIT_CHECKPOINT_URL"
ARTIFACTS_URL_ENV = "THINKEDIT_ARTIFACTS_URL"


def default_data_dir() -> Path:
    """Return ``$THINKEDIT_DATA_DIR`` or ``~/.thinkedit``: runs, artifacts, checkpoints, tiny models."""
    return Path(os.environ.get("THINKEDIT_DATA_DIR") or Path.home() / ".thinkedit").expanduser()
