"""Find and read benchmark metadata: JSON candidates, entry checks and source images (shared by the readers).

A JSON file that cannot be parsed is passed over (logged) while looking for the metadata, so an
unrelated broken file beside it does not stop a load; when no candidate holds the metadata, the
error names the unreadable ones. An entry that is malformed is described here so its reader can
skip it with that reason instead of failing the whole benchmark.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from thinkedit.tools.errors import BadInputError
from thinkedit.tools.safenames import confined_file

log = logging.getLogger(__name__)


def read_json(path: Path) -> Any:
    """Parse one JSON file; any failure is a ``BadInputError`` naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInputError(f"cannot read {path}: {exc}") from exc


def json_files(root: Path, preferred: tuple[str, ...], depth: int = 2) -> Iterator[Path]:
    """Yield the preferred metadata files first, then every JSON file within ``depth`` levels."""
    seen: set[Path] = set()
    candidates = [root / name for name in preferred]
    for level in range(depth):
        candidates += sorted(root.glob("/".join(["*"] * (level + 1)) + ".json"))
    for path in candidates:
        if path.is_file() and path not in seen:
            seen.add(path)
            yield path


def parsed(paths: Iterable[Path], parse: Callable[[Path], Any], unreadable: list[str]) -> Iterator[tuple[Path, Any]]:
    """Yield each path with what ``parse`` reads from it; one it cannot read is passed over, logged and noted in
    ``unreadable`` (a broken file beside the metadata must not stop the search for it)."""
    for path in paths:
        try:
            data = parse(path)
        except BadInputError as exc:
            log.info("passing over %s", exc)
            unreadable.append(str(exc))
            continue
        yield path, data


def find_metadata(
    root: Path, preferred: tuple[str, ...], accepts: Callable[[Any], bool], what: str
) -> tuple[Path, Any]:
    """Return the first JSON file under ``root`` that ``accepts``, with its data; unparsable ones are passed over."""
    unreadable: list[str] = []
    for path, data in parsed(json_files(root, preferred), read_json, unreadable):
        if accepts(data):
            return path, data
    also = f" ({len(unreadable)} unreadable JSON file(s), first: {unreadable[0]})" if unreadable else ""
    raise BadInputError(f"no {what} under {root}{also}")


def malformed(entry: Any, fields: dict[str, type | tuple[type, ...]]) -> str | None:
    """Say what makes a metadata entry unusable (not an object, a field missing, empty or of another type), or None."""
    if not isinstance(entry, dict):
        return f"malformed entry: a JSON {type(entry).__name__}, not an object"
    for name, kinds in fields.items():
        value = entry.get(name)
        if value is None or value == "":
            return f"malformed entry: no {name!r}"
        if not isinstance(value, kinds) or isinstance(value, bool):
            return f"malformed entry: {name!r} is a JSON {type(value).__name__}"
    return None


def find_image(relative: str, roots: list[Path]) -> Path | None:
    """Return the first file ``root / relative`` names (a name or a link that leads out of its root is never read)."""
    for root in roots:
        try:
            return confined_file(root, relative)
        except BadInputError:
            continue
    return None


def subdirs(root: Path, depth: int = 2) -> list[Path]:
    """Return ``root``'s directories down to ``depth`` levels, shallow first."""
    found: list[Path] = []
    for level in range(1, depth + 1):
        found += sorted(p for p in root.glob("/".join(["*"] * level)) if p.is_dir() and not p.name.startswith("."))
    return found


def single_image(value: Any) -> tuple[str | None, str | None]:
    """Return (path, None) for one image given as a string or a one-element list, else (None, why)."""
    if isinstance(value, str) and value:
        return value, None
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return value[0], None
    if isinstance(value, list) and len(value) > 1:
        return None, f"{len(value)} input images (the loop edits one image)"
    return None, "no input image named"
