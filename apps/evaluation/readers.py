"""Read each benchmark's published layout from a local directory into ``BenchItem``s (``load_benchmark``).

One reader per benchmark; each finds its metadata file(s) under the directory, resolves the
source image of every item and skips (with a reason) the items the loop cannot run, such as
items with several input images. See the README section "Evaluation and training data" for the
layouts and where each benchmark is published.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from thinkedit.apps.evaluation.benchmarks import BENCHMARKS, BenchItem, BenchLoad, Reader
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.safenames import confined_file, safe_component

log = logging.getLogger(__name__)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInputError(f"cannot read {path}: {exc}") from exc


def _json_files(root: Path, preferred: tuple[str, ...], depth: int = 2) -> Iterator[Path]:
    """Yield the preferred metadata files first, then every JSON file within ``depth`` levels."""
    seen: set[Path] = set()
    candidates = [root / name for name in preferred]
    for level in range(depth):
        candidates += sorted(root.glob("/".join(["*"] * (level + 1)) + ".json"))
    for path in candidates:
        if path.is_file() and path not in seen:
            seen.add(path)
            yield path


def _find_image(relative: str, roots: list[Path]) -> Path | None:
    """Return the first file ``root / relative`` names (a name or a link that leads out of its root is never read)."""
    for root in roots:
        try:
            return confined_file(root, relative)
        except BadInputError:
            continue
    return None


def _subdirs(root: Path, depth: int = 2) -> list[Path]:
    """Return ``root``'s directories down to ``depth`` levels, shallow first."""
    found: list[Path] = []
    for level in range(1, depth + 1):
        found += sorted(p for p in root.glob("/".join(["*"] * level)) if p.is_dir() and not p.name.startswith("."))
    return found


def _single_image(value: Any) -> tuple[str | None, str | None]:
    """Return (path, None) for one image given as a string or a one-element list, else (None, why)."""
    if isinstance(value, str) and value:
        return value, None
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return value[0], None
    if isinstance(value, list) and len(value) > 1:
        return None, f"{len(value)} input images (the loop edits one image)"
    return None, "no input image named"


# --- ImgEdit-Bench: {key: {"id": relative image path, "prompt": ..., "edit_type": ...}} ----------


def _is_imgedit(data: Any) -> bool:
    return isinstance(data, dict) and bool(data) and all(
        isinstance(v, dict) and "prompt" in v and "id" in v for v in list(data.values())[:20]
    )


def read_imgedit(root: Path, cache_dir: Path) -> BenchLoad:
    """Read ImgEdit-Bench: a JSON object of key → {id, prompt, edit_type} plus the original images."""
    for path in _json_files(root, ("basic_edit.json", "singleturn.json")):
        data = _read_json(path)
        if _is_imgedit(data):
            break
    else:
        raise BadInputError(f"no ImgEdit metadata (a JSON of key -> {{id, prompt, edit_type}}) under {root}")
    loaded = BenchLoad("imgedit", path)
    roots = [path.parent, root, *_subdirs(root)]
    for key, entry in data.items():
        image = _find_image(str(entry["id"]), roots)
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
    return isinstance(data, list) and bool(data) and all(
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
    for path in _json_files(root, preferred):
        data = _read_json(path)
        if _is_rise(data):
            break
    else:
        raise BadInputError(f"no RISEBench metadata (a JSON list of {{index, category, instruction, image}}) under {root}")
    loaded = BenchLoad("rise", path)
    roots = [path.parent, root, root / "data", path.parent / "data"]
    for entry in data:
        key, category = str(entry["index"]), str(entry["category"])
        relative, why = _single_image(entry["image"])
        image = _find_image(relative, roots) if relative else None
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
        for item_id, entry in _read_json(path).items():
            key = f"{category}/{item_id}"
            relative, why = _single_image(entry.get("ori_img"))
            image = _find_image(relative, [path.parent]) if relative else None
            instruction = entry.get("ins_en") or entry.get("ins") or ""
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


# --- GEdit-Bench: rows of key, task_type, instruction, instruction_language, input_image ---------


def _gedit_rows_from_tables(root: Path) -> Iterator[dict[str, Any]]:
    """Yield rows from the Hugging Face copy's Parquet or Arrow files (needs pyarrow)."""
    files = sorted(root.rglob("*.parquet")) + sorted(root.rglob("*.arrow"))
    if not files:
        return
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise BadInputError("reading GEdit-Bench's Parquet/Arrow files needs pyarrow: pip install 'thinkedit[eval]'") from exc
    for file in files:
        if file.suffix == ".parquet":
            batches = pq.ParquetFile(file).iter_batches(batch_size=16)
        else:
            try:
                batches = iter(pa.ipc.open_stream(file))
            except pa.ArrowInvalid:
                reader = pa.ipc.open_file(file)
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        for batch in batches:
            yield from batch.to_pylist()


def _gedit_rows_from_json(root: Path) -> Iterator[tuple[dict[str, Any], Path]]:
    """Yield (row, base directory) from JSON Lines or JSON exports whose images are file paths."""
    for path in sorted(root.glob("*.jsonl")) + sorted(root.glob("*.json")):
        if path.suffix == ".jsonl":
            lines = path.read_text(encoding="utf-8").splitlines()
            rows = [json.loads(line) for line in lines if line.strip()]
        else:
            rows = _read_json(path)
        if isinstance(rows, list) and rows and all(isinstance(r, dict) and "key" in r for r in rows):
            for row in rows:
                yield row, path.parent


def _gedit_image(row: dict[str, Any], base: Path, cache: Path) -> Path | None:
    """Resolve a row's source image: a file path, or embedded bytes written once to ``cache``."""
    for column in ("input_image_raw", "input_image", "image"):
        value = row.get(column)
        if isinstance(value, str) and value:
            return _find_image(value, [base])
        if isinstance(value, dict) and value.get("bytes"):
            from PIL import Image

            data = value["bytes"]
            with Image.open(io.BytesIO(data)) as im:
                suffix = (im.format or "png").lower()
            language = row.get("instruction_language") or "en"
            target = cache / "gedit" / f"{safe_component(language)}-{safe_component(row['key'])}.{safe_component(suffix)}"
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            return target
        if isinstance(value, dict) and value.get("path"):
            return _find_image(str(value["path"]), [base])
    return None


def read_gedit(root: Path, cache_dir: Path) -> BenchLoad:
    """Read GEdit-Bench: the Hugging Face Parquet/Arrow files, or a JSON Lines export with image paths."""
    loaded = BenchLoad("gedit", root)
    rows: Iterator[tuple[dict[str, Any], Path]] = ((r, root) for r in _gedit_rows_from_tables(root))
    first = next(rows, None)
    if first is None:
        rows = _gedit_rows_from_json(root)
        first = next(rows, None)
    if first is None:
        raise BadInputError(f"no GEdit-Bench rows (Parquet/Arrow files or a JSON Lines export) under {root}")
    for row, base in [first, *rows]:
        key, task = str(row["key"]), str(row.get("task_type") or "unknown")
        language = str(row.get("instruction_language") or "en")
        image = _gedit_image(row, base, cache_dir)
        if image is None:
            loaded.skip(f"{language}/{key}", "source image missing")
            continue
        loaded.items.append(
            BenchItem(
                bench="gedit",
                key=f"{language}/{key}",
                instruction=str(row["instruction"]).strip(),
                task_type=task,
                image=image,
                output_name=f"fullset/{safe_component(task)}/{safe_component(language)}/{safe_component(key)}.png",
                language=language,
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
