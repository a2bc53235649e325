"""Write a tiny synthetic benchmark from the example photos, in any supported benchmark's layout.

It exists so the evaluation runner can be exercised end to end offline (tests, the tiny
profile); its instructions are plausible edits of the three example photos, nothing more.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from thinkedit.apps.evaluation.benchmarks import BENCHMARKS
from thinkedit.tools.errors import BadInputError

#: (photo, instruction, task type, reference notes), task types interleaved so any prefix mixes them.
SYNTHETIC_ITEMS: tuple[tuple[str, str, str, str], ...] = (
    ("chelsea.png", "put a red party hat on the cat", "add", "A red party hat sits on the cat's head."),
    ("coffee.png", "make the coffee cup blue", "alter", "The cup is blue; the coffee and saucer are unchanged."),
    ("astronaut.png", "turn the photo into a watercolour painting", "style", "The whole picture looks painted in watercolour."),
    ("coffee.png", "add a chocolate cookie on the saucer", "add", "A chocolate cookie lies on the saucer."),
    ("astronaut.png", "make the astronaut's suit orange", "alter", "The suit is orange; the face and flag are unchanged."),
    ("chelsea.png", "render the cat as a pencil sketch", "style", "The cat looks drawn in pencil."),
)


def default_examples_dir() -> Path:
    """Return the repository's ``examples/`` folder (present in a source checkout)."""
    return Path(__file__).resolve().parents[2] / "examples"


def write_synthetic_benchmark(
    out_dir: str | Path, layout: str = "imgedit", *, examples_dir: str | Path | None = None, items: int | None = None
) -> Path:
    """Write ``items`` synthetic items (default all six) into ``out_dir`` in ``layout``'s format."""
    if layout not in BENCHMARKS:
        raise BadInputError(f"unknown layout {layout!r}; choose from {list(BENCHMARKS)}")
    photos = Path(examples_dir) if examples_dir else default_examples_dir()
    chosen = SYNTHETIC_ITEMS[: items or len(SYNTHETIC_ITEMS)]
    missing = sorted({p for p, *_ in chosen if not (photos / p).is_file()})
    if missing:
        raise BadInputError(f"example photos not found in {photos}: {', '.join(missing)}")
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    {"imgedit": _imgedit, "gedit": _gedit, "rise": _rise, "kris": _kris}[layout](out, photos, chosen)
    return out


def _copy(photos: Path, name: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copyfile(photos / name, target)


def _imgedit(out: Path, photos: Path, items: tuple[tuple[str, str, str, str], ...]) -> None:
    meta = {}
    for n, (photo, instruction, task, _) in enumerate(items, start=1):
        _copy(photos, photo, out / "images" / photo)
        meta[str(n)] = {"id": f"images/{photo}", "prompt": instruction, "edit_type": task}
    (out / "basic_edit.json").write_text(json.dumps(meta, indent=2))


def _gedit(out: Path, photos: Path, items: tuple[tuple[str, str, str, str], ...]) -> None:
    lines = []
    for n, (photo, instruction, task, _) in enumerate(items, start=1):
        _copy(photos, photo, out / "images" / photo)
        row = {"key": f"synthetic{n:03d}", "task_type": task, "instruction": instruction,
               "instruction_language": "en", "input_image": f"images/{photo}"}
        lines.append(json.dumps(row))
    (out / "metadata.jsonl").write_text("\n".join(lines) + "\n")


def _rise(out: Path, photos: Path, items: tuple[tuple[str, str, str, str], ...]) -> None:
    rows = []
    for n, (photo, instruction, task, notes) in enumerate(items, start=1):
        _copy(photos, photo, out / f"{task}_images" / photo)
        rows.append({"index": f"{task}_{n}", "category": task, "instruction": instruction,
                     "image": f"{task}_images/{photo}", "reference": notes})
    (out / "data_total.json").write_text(json.dumps(rows, indent=2))


def _kris(out: Path, photos: Path, items: tuple[tuple[str, str, str, str], ...]) -> None:
    folders: dict[str, dict[str, dict[str, str]]] = {}
    for n, (photo, instruction, task, notes) in enumerate(items, start=1):
        _copy(photos, photo, out / task / photo)
        folders.setdefault(task, {})[str(n)] = {"ori_img": photo, "ins_en": instruction, "explain_en": notes}
    for task, entries in folders.items():
        (out / task / "annotation.json").write_text(json.dumps(entries, indent=2))
