"""Read GEdit-Bench: the Hugging Face Parquet/Arrow files, or a JSON Lines / JSON export with image paths.

A row that is malformed (not JSON, no key or instruction) or whose embedded image cannot be decoded
is skipped with a reason naming its file and row; a table file that cannot be read is a
``BadInputError`` naming it. Embedded images are extracted into the cache folder atomically and
rewritten whenever their bytes differ from the source's, so a torn write is mended by the next run.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from thinkedit.apps.evaluation.benchmarks import BenchItem, BenchLoad
from thinkedit.apps.evaluation.metadata import find_image, malformed, parsed, read_json
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.safenames import safe_component
from thinkedit.tools.store import write_whole

log = logging.getLogger(__name__)

Row = tuple[Any, Path, str]
"""One row (a dict, or the ``ValueError`` of a line that is not JSON), its base directory, and where it was read."""


def _rows_from_tables(root: Path) -> Iterator[Row]:
    """Yield rows from the Hugging Face copy's Parquet or Arrow files (needs pyarrow)."""
    files = sorted(root.rglob("*.parquet")) + sorted(root.rglob("*.arrow"))
    if not files:
        return
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise BadInputError(
            "reading GEdit-Bench's Parquet/Arrow files needs pyarrow: pip install 'thinkedit[eval]'"
        ) from exc
    for file in files:
        number = 0
        try:
            if file.suffix == ".parquet":
                batches = pq.ParquetFile(file).iter_batches(batch_size=16)
            else:
                try:
                    batches = iter(pa.ipc.open_stream(file))
                except pa.ArrowInvalid:
                    reader = pa.ipc.open_file(file)
                    batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            for batch in batches:
                for row in batch.to_pylist():
                    number += 1
                    yield row, root, f"{file} row {number}"
        except (pa.ArrowException, OSError) as exc:
            raise BadInputError(f"cannot read {file} (after row {number}): {exc}") from exc


def _parse_rows(path: Path) -> list[tuple[Any, str]]:
    """Return (row, where) for a JSON Lines file (a line that is not JSON gives its error) or a JSON list."""
    if path.suffix != ".jsonl":
        data = read_json(path)
        return [(row, f"{path} item {n}") for n, row in enumerate(data, 1)] if isinstance(data, list) else []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"cannot read {path}: {exc}") from exc
    rows: list[tuple[Any, str]] = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                rows.append((json.loads(line), f"{path} line {n}"))
            except json.JSONDecodeError as exc:
                rows.append((ValueError(f"not JSON: {exc}"), f"{path} line {n}"))
    return rows


def _rows_from_json(root: Path) -> tuple[list[Row], list[str]]:
    """Return the rows of every JSON Lines or JSON export that holds GEdit rows, and the unreadable files."""
    found: list[Row] = []
    unreadable: list[str] = []
    for path, rows in parsed(sorted(root.glob("*.jsonl")) + sorted(root.glob("*.json")), _parse_rows, unreadable):
        if any(isinstance(row, dict) and "key" in row for row, _ in rows[:20]):
            found += [(row, path.parent, where) for row, where in rows]
    return found, unreadable


def _keep(target: Path, data: bytes) -> None:
    """Make ``target`` hold ``data``: written atomically, and rewritten when a cached copy differs (a torn write)."""
    try:
        if target.stat().st_size == len(data) and target.read_bytes() == data:
            return
    except OSError:
        pass
    try:
        write_whole(target, data)
    except OSError as exc:
        raise BadInputError(f"cannot write the extracted source image {target}: {exc}") from exc


def _extract(row: dict[str, Any], data: Any, cache: Path) -> tuple[Path | None, str]:
    """Write a row's embedded image bytes to ``cache``; return (path, "") or (None, why it cannot be read)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            suffix = (im.format or "png").lower()
    except (OSError, ValueError, TypeError, Image.DecompressionBombError) as exc:
        return None, f"embedded image unreadable: {exc}"
    language = str(row.get("instruction_language") or "en")
    target = cache / "gedit" / f"{safe_component(language)}-{safe_component(str(row['key']))}.{safe_component(suffix)}"
    _keep(target, data)
    return target, ""


def _image(row: dict[str, Any], base: Path, cache: Path) -> tuple[Path | None, str]:
    """Resolve a row's source image (a file path, or embedded bytes extracted to ``cache``); else (None, why)."""
    for column in ("input_image_raw", "input_image", "image"):
        value = row.get(column)
        if isinstance(value, str) and value:
            return find_image(value, [base]), "source image missing"
        if isinstance(value, dict) and value.get("bytes"):
            return _extract(row, value["bytes"], cache)
        if isinstance(value, dict) and value.get("path"):
            return find_image(str(value["path"]), [base]), "source image missing"
    return None, "source image missing"


def read_gedit(root: Path, cache_dir: Path) -> BenchLoad:
    """Read GEdit-Bench: the Hugging Face Parquet/Arrow files, or a JSON Lines export with image paths."""
    loaded = BenchLoad("gedit", root)
    rows: Iterator[Row] = _rows_from_tables(root)
    first = next(rows, None)
    unreadable: list[str] = []
    if first is None:
        found, unreadable = _rows_from_json(root)
        rows = iter(found)
        first = next(rows, None)
    if first is None:
        also = f" ({len(unreadable)} unreadable file(s), first: {unreadable[0]})" if unreadable else ""
        raise BadInputError(f"no GEdit-Bench rows (Parquet/Arrow files or a JSON Lines export) under {root}{also}")
    for row, base, where in itertools.chain([first], rows):
        why = str(row) if isinstance(row, ValueError) else malformed(row, {"key": (str, int), "instruction": str})
        language = str(row.get("instruction_language") or "en") if isinstance(row, dict) else "en"
        if why:
            key = row.get("key") if isinstance(row, dict) else None
            loaded.skip(f"{language}/{key}" if isinstance(key, (str, int)) else where, f"{why} ({where})")
            continue
        key, task = str(row["key"]), str(row.get("task_type") or "unknown")
        image, why = _image(row, base, cache_dir)
        if image is None:
            loaded.skip(f"{language}/{key}", f"{why} ({where})")
            continue
        loaded.items.append(
            BenchItem(
                bench="gedit",
                key=f"{language}/{key}",
                instruction=row["instruction"].strip(),
                task_type=task,
                image=image,
                output_name=f"fullset/{safe_component(task)}/{safe_component(language)}/{safe_component(key)}.png",
                language=language,
            )
        )
    return loaded
