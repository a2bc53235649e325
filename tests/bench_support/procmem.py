"""Read peak memory (max RSS) of server processes and their children from /proc, for the load test.

Linux only: ``VmHWM`` in ``/proc/<pid>/status`` is the process's peak resident set so far, so one
reading just before the servers stop gives each process's peak over the whole load.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

PROC = Path("/proc")


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def peak_rss_mib(pid: int) -> float:
    """Return the process's peak resident memory in MiB (0 when it is gone)."""
    for line in _read(PROC / str(pid) / "status").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def title(pid: int) -> str:
    """Return the process's command line (Ray workers set it to ``ray::<Actor>...``)."""
    return _read(PROC / str(pid) / "cmdline").replace("\0", " ").strip()


def descendants(root: int) -> list[int]:
    """Return the pids of every live process below ``root`` (children, grandchildren, ...)."""
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _read(entry / "stat")
            if ")" in stat:  # the command name may hold spaces: the fields start after the last ')'
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid]
        found += children
        frontier += children
    return found


def tree_peaks(root: int, label: str) -> list[tuple[str, float]]:
    """Return (label, peak MiB) for ``root`` and, grouped by kind, the processes it started.

    Ray Serve replicas are listed one by one (``<label> replica N``); other Ray processes
    (GCS, raylet, controller, proxy, idle workers) are summed as ``<label> ray other (n)``.
    """
    rows = [(label, peak_rss_mib(root))]
    replicas, others = [], []
    for pid in descendants(root):
        name = title(pid)
        (replicas if "ServeReplica" in name else others).append(peak_rss_mib(pid))
    rows += [(f"{label} replica {i + 1}", mib) for i, mib in enumerate(replicas)]
    if others:
        rows.append((f"{label} ray/other processes ({len(others)}, summed)", sum(others)))
    return rows


def self_peak_mib() -> float:
    """Return this process's own peak resident memory in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def available() -> bool:
    """Say whether /proc can be read for other processes (Linux)."""
    return (PROC / str(os.getpid()) / "status").is_file()
