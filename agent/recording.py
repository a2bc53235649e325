"""Record finished runs into a dataset directory: one folder per trajectory, images beside its JSON.

``<root>/<run id>/`` (the id made a safe file name) holds ``source.png``, ``round-N.png`` for every round,
``round-N-candidate-K.png`` for every candidate of a best-of-K round (K = 1, 2, … in the round's order),
``reference-N.png`` for every reference image (N = 2, 3, …: the image number the thinker is told) and
``trajectory.json``: the instructions, every verdict (scores, reasoning, refined instruction,
raw thinker output), the stop reason, the task type when known, and the editor and thinker
that produced it. Every image is named by its file in the folder, never by a path on the recording machine;
recordings made before candidates and references were copied keep their store references, and read as before.
A folder appears whole or not at all (it is written under a temporary name and renamed), so a crash never
leaves a half-recorded trajectory for the data builder to read.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model, model_validator

from thinkedit.agent.state import RunState
from thinkedit.agent.view import RoundScores, RunCore, RunView, run_view
from thinkedit.tools.safenames import safe_component
from thinkedit.tools.store import ArtifactStore

log = logging.getLogger(__name__)

FORMAT = "thinkedit-trajectory/1"
TRAJECTORY_FILE = "trajectory.json"


def _reader(model: type[BaseModel], name: str, required: set[str], **fields: Any) -> type[BaseModel]:
    """Return a reader's model of the view's ``model``: its fields, strictly typed, only ``required`` present.

    Recorded files come from other versions and other tools too, so fields the view added since
    may be missing and unknown ones pass through; ``fields`` replace what a recording names
    differently (images by file name).
    """
    own = {k: (f.annotation, ... if k in required else None) for k, f in model.model_fields.items() if not f.exclude}
    return create_model(name, __config__=ConfigDict(extra="allow", strict=True), **{**own, **fields})


class _RoundReader(_reader(RoundScores, "_RoundFields", {"index", "instruction"}, image=(str, ...))):  # type: ignore[misc]
    """A recorded round as readers use it: the view's round fields, its image by file name."""

    @model_validator(mode="after")
    def _scored_whole(self) -> _RoundReader:
        if self.overall is not None and (self.semantic is None or self.quality is None):
            raise ValueError(f"round {self.index} has an overall score without semantic and quality")
        return self


_TrajectoryReader = _reader(
    RunCore,
    "_TrajectoryReader",
    {"instruction", "rounds"},
    run_id=(str | None, None),
    id=(str | int | None, None),
    status=(RunView.model_fields["status"].annotation | None, None),
    task_type=(str | None, None),
    source_image=(str, ...),
    thinker=(dict[str, Any] | None, None),
    rounds=(list[_RoundReader], ...),
)


def shape_problem(data: dict[str, Any]) -> str | None:
    """Say what is wrong with a trajectory file's fields and types (in one line), or None when it is sound."""
    try:
        _TrajectoryReader.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        return f"{where}: {first['msg']} ({exc.error_count()} problem(s))"
    return None


def candidate_file(round_index: int, k: int) -> str:
    """Return the file name of round ``round_index``'s ``k``-th candidate (1-based) in a recording."""
    return f"round-{round_index}-candidate-{k}.png"


def reference_file(n: int) -> str:
    """Return the file name of reference image ``n`` (2, 3, …: its number in the prompt) in a recording."""
    return f"reference-{n}.png"


def _round_record(r: dict[str, Any]) -> dict[str, Any]:
    """Return a view's round with its image and its candidates' images named by their files."""
    candidates = [{**c, "image": candidate_file(r["index"], k)} for k, c in enumerate(r.get("candidates") or [], 1)]
    return {**r, "image": f"round-{r['index']}.png", "candidates": candidates}


def trajectory_record(state: RunState, *, task_type: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the JSON of a recorded trajectory: a projection of the run's view, images named by their file."""
    settings = state.resolved()
    data = run_view(state, settings).trajectory()
    return {
        "format": FORMAT,
        "id": state.run_id,
        "run_id": state.run_id,
        "instruction": state.instruction,
        "task_type": task_type,
        "status": data["status"],
        "stop_reason": data["stop_reason"],
        "best_round": data["best_round"],
        "source_image": "source.png",
        "reference_images": [reference_file(n) for n, _ in enumerate(data["reference_images"], 2)],
        "thinker": _shareable(settings.thinker.model_dump(exclude_none=True)),
        "editor": _shareable(settings.editor.model_dump(exclude_none=True)),
        "loop": settings.model_dump(
            include={"max_rounds", "semantic_threshold", "quality_threshold", "edit_from", "seed", "seed_policy", "selection"}
        ),
        "rounds": [_round_record(r) for r in data["rounds"]],
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }


def record_trajectory(
    state: RunState,
    store: ArtifactStore,
    root: str | Path,
    *,
    task_type: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the run's trajectory folder under ``root`` (replacing an earlier recording) and return it."""
    if state.source is None:
        raise ValueError(f"run {state.run_id} has no source image to record")
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    record = trajectory_record(state, task_type=task_type, extra=extra)
    name = safe_component(state.run_id)  # run ids come from callers (Studio, embeddings): one component only
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    target, aside = root / name, None
    try:
        shutil.copyfile(store.local_path(state.source), tmp / "source.png")
        for n, ref in enumerate(state.reference_images, 2):
            shutil.copyfile(store.local_path(ref), tmp / reference_file(n))
        for r in state.rounds:
            shutil.copyfile(store.local_path(r.image), tmp / f"round-{r.index}.png")
            for k, c in enumerate(r.candidates, 1):
                shutil.copyfile(store.local_path(c.image), tmp / candidate_file(r.index, k))
        (tmp / TRAJECTORY_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
        if target.exists():  # the earlier recording leaves whole, under a hidden name readers skip
            aside = Path(tempfile.mkdtemp(prefix=f".{name}-replaced-", dir=root))
            os.replace(target, aside)
        try:
            os.rename(tmp, target)
        except BaseException:
            if aside is not None:
                os.replace(aside, target)  # put the earlier one back
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if aside is not None:  # deleted only once the new recording stands in its place
        shutil.rmtree(aside, ignore_errors=True)
    log.info("recorded trajectory %s (%d rounds) in %s", state.run_id, len(state.rounds), target)
    return target


def read_trajectories(
    root: str | Path, on_skip: Callable[[Path, str, str], None] | None = None
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Yield (folder, trajectory) for every recorded trajectory under ``root``, in folder-name order.

    A ``trajectory.json`` that cannot be used is skipped with a warning and, so callers can count it,
    passed to ``on_skip`` as (file, reason, problem): reason ``unreadable`` (not UTF-8 JSON),
    ``wrong_format`` (not a thinkedit trajectory) or ``malformed`` (fields missing or mistyped).
    """

    def skip(path: Path, reason: str, problem: str) -> None:
        log.warning("skipping %s (%s): %s", path, reason, problem)
        if on_skip is not None:
            on_skip(path, reason, problem)

    for path in sorted(Path(root).expanduser().glob(f"*/{TRAJECTORY_FILE}")):
        if path.parent.name.startswith("."):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, nesting past the stack
            skip(path, "unreadable", str(exc) or type(exc).__name__)
            continue
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            skip(path, "wrong_format", f"not a {FORMAT} file")
            continue
        problem = shape_problem(data)
        if problem:
            skip(path, "malformed", problem)
            continue
        yield path.parent, data


def _shareable(config: dict[str, Any]) -> dict[str, Any]:
    """Return an editor's or thinker's config fit for a recording others may get: a server URL's secrets masked."""
    from thinkedit.tools.secrets import mask_url

    return {**config, "base_url": mask_url(config["base_url"])} if config.get("base_url") else config
