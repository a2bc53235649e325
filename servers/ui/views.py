"""What the gallery's pages and API show of a run: the renderer's view, and a one-card summary."""

from __future__ import annotations

from typing import Any

from thinkedit.agent.runs import Runner, RunRecord
from thinkedit.agent.state import ACTIVE
from thinkedit.agent.trajectory import trajectory
from thinkedit.agent.viewer import run_view
from thinkedit.tools.profiles import DEMO_NOTE, is_demo
from thinkedit.tools.types import ImageRef


def image_url(run_id: str, name: str, ref: dict[str, Any] | ImageRef, width: int | None = None) -> str:
    """Return the page-relative URL of a run's image (the hash keeps caches right)."""
    sha = ref.sha256 if isinstance(ref, ImageRef) else ref["sha256"]
    return f"api/runs/{run_id}/images/{name}.png?v={sha[:12]}" + (f"&w={width}" if width else "")


async def view_of(runner: Runner, record: RunRecord, *, live: bool, progress: str | None, prefix: str = "") -> dict[str, Any]:
    """Return the renderer's data for a run: its trajectory, image URLs, settings, live line and review."""
    state = await runner.state(record.run_id)
    status = "running" if live else record.status
    pending = await runner.pending_review(record.run_id) if status == "awaiting_review" else None
    if state is not None and state.source is not None:
        data = trajectory(state, status=status)
    else:
        data = {"run_id": record.run_id, "instruction": record.instruction, "status": status, "stop_reason": None,
                "best_round": None, "source_image": record.source.model_dump(), "rounds": []}
    data.setdefault("demo_note", _demo_note(record))
    data.setdefault("editor", record.settings.editor.model)
    data.setdefault("thinker", record.settings.thinker.model)
    if data["status"] != "done":
        data["best_round"] = None
    return run_view(
        data,
        settings=record.settings,
        image_src=lambda name, ref: prefix + image_url(record.run_id, name, ref),
        progress=progress if status in ACTIVE else None,
        review=pending,
        created_at=record.created_at,
        updated_at=record.updated_at,
        error=record.error,
    )


async def summary_of(runner: Runner, record: RunRecord, *, live: bool) -> dict[str, Any]:
    """Return one gallery card: status, instruction, round count, the chosen (or latest) scores, a thumbnail."""
    state = await runner.state(record.run_id)
    rounds = state.rounds if state is not None else []
    chosen = next((r for r in rounds if state is not None and r.index == state.best_round), rounds[-1] if rounds else None)
    verdict = chosen.verdict if chosen is not None else None
    thumb_name, thumb = (f"round-{chosen.index}", chosen.image) if chosen is not None else ("source", record.source)
    return {
        "run_id": record.run_id,
        "status": "running" if live else record.status,
        "instruction": record.instruction,
        "created_at": record.created_at,
        "error": record.error,
        "rounds": len(rounds),
        "max_rounds": record.settings.max_rounds,
        "best_round": state.best_round if state is not None else None,
        "semantic": verdict.semantic if verdict else None,
        "quality": verdict.quality if verdict else None,
        "overall": verdict.overall if verdict else None,
        "editor": record.settings.editor.model,
        "thinker": record.settings.thinker.model,
        "thumbnail": image_url(record.run_id, thumb_name, thumb, width=320),
        "demo_note": _demo_note(record),
    }


def _demo_note(record: RunRecord) -> str | None:
    """Return the demo sentence when the run's models are random-weight miniatures."""
    return DEMO_NOTE if is_demo(record.settings.editor, record.settings.thinker) else None
