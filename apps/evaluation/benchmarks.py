"""Benchmark items and the registry of benchmark readers (GEdit-Bench, ImgEdit, RISEBench, KRIS-Bench)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from thinkedit.tools.errors import BadInputError

BenchName = Literal["gedit", "imgedit", "rise", "kris"]
BENCHMARKS: tuple[BenchName, ...] = ("gedit", "imgedit", "rise", "kris")


@dataclass(frozen=True)
class BenchItem:
    """Hold one benchmark item: the source image, the instruction and what the judge may know."""

    bench: str
    key: str
    instruction: str
    task_type: str
    image: Path
    output_name: str
    notes: str = ""
    language: str = "en"


@dataclass
class BenchLoad:
    """Collect a benchmark's usable items and the ones skipped, with why."""

    bench: str
    source: Path
    items: list[BenchItem] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, key: str, reason: str) -> None:
        """Note an item that cannot be run."""
        self.skipped.append((key, reason))


Reader = Callable[[Path, Path], BenchLoad]


def load_benchmark(
    bench: str,
    root: str | Path,
    *,
    cache_dir: str | Path,
    languages: set[str] | None = None,
    task_types: set[str] | None = None,
    limit: int | None = None,
) -> BenchLoad:
    """Read a local copy of ``bench`` from ``root``; filter by language and task type, keep ``limit``."""
    from thinkedit.apps.evaluation.readers import READERS

    if bench not in READERS:
        raise BadInputError(f"unknown benchmark {bench!r}; choose from {list(BENCHMARKS)}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise BadInputError(f"benchmark directory not found: {path}")
    loaded = READERS[bench](path, Path(cache_dir).expanduser())
    if not loaded.items and not loaded.skipped:
        raise BadInputError(f"no {bench} items found under {path} (see the README for the expected layout)")
    items = loaded.items
    if languages:
        items = [i for i in items if i.language in languages]
    if task_types:
        items = [i for i in items if i.task_type in task_types]
    keys = [i.key for i in items]
    if len(set(keys)) != len(keys):
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        raise BadInputError(f"{bench} under {path} has duplicate item keys: {duplicates[:5]}")
    loaded.items = items[:limit] if limit else items
    return loaded
