"""Open a file under an allowed root by descriptor, so a symlink swapped in after the check is refused.

The caller has already resolved the path and found it under ``root``. This walks the resolved
path from the root one component at a time with ``O_NOFOLLOW`` (the resolved path has no
symlinks, so meeting one means someone swapped it in since), and the bytes are read from the
descriptor that was checked, never by opening the name again.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from thinkedit.tools.errors import BadInputError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def open_beneath(real: Path, root: Path, label: str) -> int:
    """Return a read-only descriptor of ``real`` (inside ``root``), opened without following any symlink."""
    parts = real.relative_to(root).parts
    if not parts:
        raise BadInputError(f"not a file: {label}")
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | os.O_CLOEXEC)
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            flags = os.O_RDONLY | _NOFOLLOW | os.O_CLOEXEC | (_NONBLOCK if last else _DIRECTORY)
            try:
                child = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise BadInputError(
                        f"{label} changed while it was being opened (a symlink appeared on its path); refused"
                    ) from None
                if exc.errno == errno.ENOENT:
                    raise BadInputError(f"image not found: {label}") from None
                raise BadInputError(f"cannot read {label}: {exc.strerror or exc}") from None
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise
