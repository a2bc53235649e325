"""Where things are when no option says: the data directory, the storage URL variables, the packaged profiles.

Standard library only, so command-line modules can name them without importing pydantic.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from pathlib import Path

#: Environment variables that choose where runs live when no option says.
CHECKPOINT_URL_ENV = "THINKEDIT_CHECKPOINT_URL"
ARTIFACTS_URL_ENV = "THINKEDIT_ARTIFACTS_URL"

#: The environment variable naming the profile of a run that names none; ``tiny`` when it is unset.
PROFILE_ENV = "THINKEDIT_PROFILE"
DEFAULT_PROFILE = "tiny"

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def default_profile(env: Mapping[str, str] = os.environ) -> str:
    """Return the profile of a run that names none: ``$THINKEDIT_PROFILE``, else tiny."""
    return env.get(PROFILE_ENV) or DEFAULT_PROFILE


def is_url(location: str | Path) -> bool:
    """Say whether ``location`` is a URL (fsspec) rather than a local path."""
    return isinstance(location, str) and bool(_URL.match(location))


def default_data_dir() -> Path:
    """Return ``$THINKEDIT_DATA_DIR`` or ``~/.thinkedit``: runs, artifacts, checkpoints, tiny models."""
    return Path(os.environ.get("THINKEDIT_DATA_DIR") or Path.home() / ".thinkedit").expanduser()


def storage_locations(
    checkpoints: str | None = None, artifacts: str | None = None, env: Mapping[str, str] = os.environ
) -> tuple[str | None, str | None]:
    """Return where runs live: the checkpointer and artifact store URLs given, else the environment's.

    None means the data dir's own (``<data_dir>/checkpoints.sqlite``, ``<data_dir>/artifacts``).
    """
    return checkpoints or env.get(CHECKPOINT_URL_ENV) or None, artifacts or env.get(ARTIFACTS_URL_ENV) or None


def available_profiles() -> list[str]:
    """List the packaged profile names (the ``.toml`` files of ``thinkedit.tools.profiles``).

    Found from the package's folder without importing the package, which loads pydantic.
    """
    spec = importlib.util.find_spec("thinkedit.tools.profiles")
    folders = (spec.submodule_search_locations or []) if spec else []
    return sorted({f.stem for folder in folders for f in Path(folder).glob("*.toml")})
