"""Build file names from data (benchmark keys, run ids, recorded trajectories) that stay where they belong.

A name taken from a row, a JSON file or a request may hold ``/``, ``..``, an absolute path or a NUL
byte; ``safe_component`` turns it into one harmless path component (unchanged when it already is
one, so benchmark layouts keep their published names), and ``confined`` refuses a joined path that
would leave its directory.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from thinkedit.tools.errors import BadInputError

_UNSAFE = re.compile(r"[^\w.\- ]")
MAX_COMPONENT = 120


def safe_component(text: object) -> str:
    """Return ``text`` as one file-name component; a changed name gets a short hash so two never collide."""
    raw = str(text)
    cleaned = _UNSAFE.sub("_", raw).strip(" ").lstrip(".")[:MAX_COMPONENT]
    if cleaned == raw and cleaned:
        return cleaned
    digest = hashlib.sha1(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned or '_'}-{digest}"


def confined(root: str | Path, relative: str | Path) -> Path:
    """Return ``root / relative``, refusing an absolute ``relative`` or one that climbs out of ``root``."""
    text = str(relative)
    if "\0" in text:
        raise BadInputError(f"file name {text!r} contains a NUL byte")
    if os.path.isabs(text) or Path(text).drive:
        raise BadInputError(f"file name {text!r} is absolute; expected a path inside {root}")
    normal = os.path.normpath(text)
    if normal == ".." or normal.startswith(".." + os.sep) or normal == ".":
        raise BadInputError(f"file name {text!r} leaves {root}")
    return Path(root) / normal


def confined_file(root: str | Path, relative: str | Path) -> Path:
    """Return the real path of the file ``root / relative`` names, refusing one that is not a regular file or that a
    symlink leads out of ``root`` (recorded data is shared as archives, and an archive keeps its links)."""
    path = confined(root, relative)
    real, base = path.resolve(), Path(root).resolve()
    if not real.is_relative_to(base):
        raise BadInputError(f"{relative} in {root} is a link to {real}, outside {root}; refused")
    if not real.is_file():
        raise BadInputError(f"{relative} in {root} is not a file")
    return real


#: Folders (``os.pathsep``-separated) that a graph server may read image and profile paths from, beside its own.
ALLOW_ROOT_ENV = "THINKEDIT_ALLOW_ROOT"


def under_roots(path: str | Path, roots: list[Path], what: str = "image") -> Path:
    """Return the real path of ``path`` (relative to the working directory) if it lies under one of ``roots``.

    A path from a client may name any file: refused, before anything is opened (so the answer says
    nothing of files elsewhere), unless it resolves, links followed, inside an allowed folder.
    """
    text = str(path)
    if "\0" in text:
        raise BadInputError(f"{what} path {text[:80]!r} contains a NUL byte")
    given = Path(text).expanduser()
    real = (given if given.is_absolute() else Path.cwd() / given).resolve()
    if any(real.is_relative_to(root.resolve()) for root in roots):
        return real
    allowed = ", ".join(str(root) for root in roots)
    raise BadInputError(f"{what} {text[:200]} is outside the folders this server reads from ({allowed}); "
                        f"add a folder to ${ALLOW_ROOT_ENV} to allow it")
