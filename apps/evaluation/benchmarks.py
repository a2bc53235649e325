"""Name the benchmarks (GEdit-Bench, ImgEdit, RISEBench, KRIS-Bench) and hold what their readers find: items, skips."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


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
