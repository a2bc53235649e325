"""Where things are when no option says: the data directory, the storage URL variables, the packaged profiles.

Standard library only, so command-line modules can name them without importing pydantic.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

#: Environment variables that choose where runs live when no option says.
CHECKPOINT_URL_ENV = "THINKEDIT_CHECKPOINT_URL"
ARTIFACTS_URL_ENV = "THINKEDIT_ARTIFACTS_URL"


def default_data_dir() -> Path:
    """Return ``$THINKEDIT_DATA_DIR`` or ``~/.thinkedit``: runs, artifacts, checkpoints, tiny models."""
    return Path(os.environ.get("THINKEDIT_DATA_DIR") or Path.home() / ".thinkedit").expanduser()


def available_profiles() -> list[str]:
    """List the packaged profile names (the ``.toml`` files of ``thinkedit.tools.profiles``).

    Found from the package's folder without importing the package, which loads pydantic.
    """
    spec = importlib.util.find_spec("thinkedit.tools.profiles")
    folders = (spec.submodule_search_locations or []) if spec else []
    return sorted({f.stem for folder in folders for f in Path(folder).glob("*.toml")})
