"""Read each benchmark's published layout from a local directory into ``BenchItem``s (``load_benchmark``).

One reader per benchmark (GEdit-Bench's in ``gedit``); each finds its metadata file(s) under the
directory (``metadata``), resolves the source image of every item and skips (with a reason) the
items the loop cannot run, such as items with several input images or malformed entries. See the
README section "Evaluation and training data" for the layouts and where each benchmark is published."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from thinkedit.apps.evaluation.benchmarks import BENCHMARKS, BenchItem, BenchLoad, Reader
from thinkedit.apps.evaluation.gedit import read_gedit
from thinkedit.apps.evaluation.metadata import find_image, find_metadata, malformed, read_json, single_image, subdirs
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.safenames import safe_component


# --- ImgEdit-Bench: {key: {"id": relative image path, "prompt": ..., "edit_type": ...}} ----------


def _is_imgedit(data: Any) -> bool:
    """Recognise the metadata by its first entries (a malformed one among them is skipped later, not fatal)."""
    return isinstance(data, dict) and any(
        isinstance(v, dict) and "prompt" in v and "id" in v for v in list(data.values())[:20]
    )


def read_imgedit(root: Path, cache_dir: Path) -> BenchLoad:
    """Read ImgEdit-Bench: a JSON object of key → {id, prompt, edit_type} plus the original images."""
    path, data = find_metadata(root, ("basic_edit.json", "singleturn.json"), _is_imgedit,
                           "ImgEdit metadata (a JSON of key -> {id, prompt, edit_type})")
    loaded = BenchLoad("imgedit", path)
    roots = [path.parent, root, *subdirs(root)]
    for key, entry in data.items():
        why = malformed(entry, {"id": str, "prompt": str})
        if why:
            loaded.skip(str(key), f"{why} in {path}")
            continue
        image = find_image(entry["id"], roots)
        if image is None:
            loaded.skip(str(key), f"image {entry['id']} not found")
            continue
        loaded.items.append(
            BenchItem(
                bench="imgedit",
                key=str(key),
                instruction=str(entry["prompt"]).strip(),
                task_type=str(entry.get("edit_type") or "unknown"),
                image=image,
                output_name=f"{safe_component(key)}.png",
            )
        )
    return loaded


# --- RISEBench: [{"index", "category", "instruction", "image", "reference"...}] ------------------


def _is_rise(data: Any) -> bool:
    """Recognise the metadata by its first entries (a malformed one among them is skipped later, not fatal)."""
    return isinstance(data, list) and any(
        isinstance(v, dict) and {"index", "category", "instruction", "image"} <= v.keys() for v in data[:20]
    )


def _rise_notes(entry: dict[str, Any]) -> str:
    text = entry.get("reference") or entry.get("reference_txt")
    if isinstance(text, str) and text.strip():
        return text.strip()
    if entry.get("reference_img"):
        return "The benchmark has a reference image for this item, which is not shown here."
    return "none"


def read_rise(root: Path, cache_dir: Path) -> BenchLoad:
    """Read RISEBench: a JSON list of items with index, category, instruction, image and reference."""
    preferred = ("datav2_total_w_subtask.json", "data_total.json", "data/data_total.json")
    path, data = find_metadata(root, preferred, _is_rise,
                           "RISEBench metadata (a JSON list of {index, category, instruction, image})")
    loaded = BenchLoad("rise", path)
    roots = [path.parent, root, root / "data", path.parent / "data"]
    for number, entry in enumerate(data, 1):
        bad = malformed(entry, {"index": (str, int), "category": str, "instruction": str})
        if bad:
            index = entry.get("index") if isinstance(entry, dict) else None
            loaded.skip(str(index) if isinstance(index, (str, int)) else f"entry {number}", f"{bad} in {path}")
            continue
        key, category = str(entry["index"]), str(entry["category"])
        relative, why = single_image(entry.get("image"))
        image = find_image(relative, roots) if relative else None
        if image is None:
            loaded.skip(key, why or f"image {relative} not found")
            continue
        loaded.items.append(
            BenchItem(
                bench="rise",
                key=key,
                instruction=str(entry["instruction"]).strip(),
                task_type=category,
                image=image,
                output_name=f"images/{safe_component(category)}/{safe_component(key)}.png",
                notes=_rise_notes(entry),
            )
        )
    return loaded


# --- KRIS-Bench: <category>/annotation.json of id → {"ori_img", "ins_en", "explain_en"} ---------


def read_kris(root: Path, cache_dir: Path) -> BenchLoad:
    """Read KRIS-Bench: one folder per category, each with annotation.json and its images."""
    files = sorted(root.glob("*/annotation.json")) + sorted(root.glob("*/*/annotation.json"))
    if not files:
        raise BadInputError(f"no KRIS-Bench category folders (<category>/annotation.json) under {root}")
    loaded = BenchLoad("kris", files[0].parent.parent)
    for path in files:
        category = path.parent.name
        annotations = read_json(path)
        if not isinstance(annotations, dict):
            kind = type(annotations).__name__
            raise BadInputError(f"{path}: a JSON {kind}, not an object of id -> {{ori_img, ins_en}}")
        for item_id, entry in annotations.items():
            key = f"{category}/{item_id}"
            instruction = (entry.get("ins_en") or entry.get("ins") or "") if isinstance(entry, dict) else None
            if not isinstance(instruction, str):
                why = malformed(entry, {}) or f"malformed entry: the instruction is a JSON {type(instruction).__name__}"
                loaded.skip(key, f"{why} in {path}")
                continue
            relative, why = single_image(entry.get("ori_img"))
            image = find_image(relative, [path.parent]) if relative else None
            if image is None or not instruction.strip():
                loaded.skip(key, why or ("no English instruction" if image else f"image {relative} not found"))
                continue
            loaded.items.append(
                BenchItem(
                    bench="kris",
                    key=key,
                    instruction=instruction.strip(),
                    task_type=category,
                    image=image,
                    output_name=f"{safe_component(category)}/{safe_component(item_id)}.png",
                    notes=str(entry.get("explain_en") or "none").strip(),
                )
            )
    return loaded


READERS: dict[str, Reader] = {"gedit": read_gedit, "imgedit": read_imgedit, "rise": read_rise, "kris": read_kris}


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
