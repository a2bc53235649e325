"""Advisory per-run locks, so two server processes sharing a data directory never drive one run.

Each desktop client starts its own stdio server, usually on the same data directory; without a
lock, ``get_run`` in one would "resume" a run another is still running. The operating system
drops a process's locks when it dies, so a crashed server's runs become resumable at once.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process check, one server per data dir
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


class RunLocks:
    """Hold one lock file per run this process drives."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._held: dict[str, int] = {}

    def acquire(self, run_id: str) -> bool:
        """Take the run's lock; say whether it was free (a lock this process holds counts as taken)."""
        if run_id in self._held:
            return False
        fd = os.open(self.root / f"{run_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
        self._held[run_id] = fd
        return True

    def release(self, run_id: str) -> None:
        """Drop the run's lock (closing the file releases it)."""
        fd = self._held.pop(run_id, None)
        if fd is not None:
            os.close(fd)

    def held_elsewhere(self, run_id: str) -> bool:
        """Say whether another process holds the run's lock now."""
        if run_id in self._held:
            return False
        if self.acquire(run_id):
            self.release(run_id)
            return False
        return True
