"""Results files: one JSON Lines file per (benchmark, setting), appended one finished item at a time.

A line is written only once an item is fully judged, and flushed to disk at once, so the set
of keys present in both settings' files is exactly the set of items a rerun may skip. A line cut
short by a crash is ignored on reading.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

Setting = Literal["single", "loop"]
SETTINGS: tuple[Setting, ...] = ("single", "loop")


def results_path(out_dir: str | Path, bench: str, setting: Setting) -> Path:
    """Return ``<out>/<bench>-<setting>.jsonl``."""
    return Path(out_dir) / f"{bench}-{setting}.jsonl"


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Read a results file; a key written twice keeps its last line; damaged lines are skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    by_key: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            log.warning("skipping damaged line %d of %s", number, path)
            continue
        if isinstance(row, dict) and "key" in row:
            by_key[str(row["key"])] = row
    return list(by_key.values())


def _ends_cut_short(path: Path) -> bool:
    """Say whether the file's last line lacks its newline (a write was interrupted)."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"


def append_result(path: str | Path, row: dict[str, Any]) -> None:
    """Append one result line (on a line of its own, even after a torn write) and force it to disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = "\n" if _ends_cut_short(path) else ""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(prefix + json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def completed_keys(out_dir: str | Path, bench: str) -> set[str]:
    """Return the keys of items with a result in every setting (the ones a rerun skips)."""
    sets = [{str(r["key"]) for r in read_results(results_path(out_dir, bench, s))} for s in SETTINGS]
    return set.intersection(*sets)
