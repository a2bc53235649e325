"""What the gallery's pages and API show of a run: its view as the renderer draws it, and a one-card summary."""

from __future__ import annotations

from typing import Any

from thinkedit.agent.runs import Runner, RunRecord
from thinkedit.agent.state import ACTIVE
from thinkedit.agent.view import RunView, read_run, run_view
from thinkedit.agent.viewer import page_data
from thinkedit.tools.types import ImageRef


def image_url(run_id: str, name: str, ref: dict[str, Any] | ImageRef, width: int | None = None) -> str:
    """Return the page-relative URL of a run's image (the hash keeps caches right)."""
    sha = ref.sha256 if isinstance(ref, ImageRef) else ref["sha256"]
    return f"api/runs/{run_id}/images/{name}.png?v={sha[:12]}" + (f"&w={width}" if width else "")


async def _view(runner: Runner, record: RunRecord, live: bool) -> tuple[RunView, dict[str, Any] | None]:
    """Read a run's checkpoint once into its view (status ``running`` while this process drives it)."""
    run = await read_run(runner, record.run_id, record)
    view = run_view(run.state, record.settings, record, status="running" if live else record.status)
    return view, run.pending if view.status == "awaiting_review" else None


async def view_of(runner: Runner, record: RunRecord, *, live: bool, progress: str | None, prefix: str = "") -> dict[str, Any]:
    """Return the renderer's data for a run: its view, image URLs, settings, live line and review."""
    view, pending = await _view(runner, record, live)
    data = view.model_dump(mode="json")
    if view.status != "done":
        data["best_round"] = None
    return page_data(
        data,
        settings=record.settings,
        image_src=lambda name, ref: prefix + image_url(record.run_id, name, ref),
        progress=progress if view.status in ACTIVE else None,
        review=pending,
    )


async def summary_of(runner: Runner, record: RunRecord, *, live: bool) -> dict[str, Any]:
    """Return one gallery card: status, instruction, round count, the chosen (or latest) scores, a thumbnail."""
    view, _ = await _view(runner, record, live)
    chosen = view.chosen() or (view.rounds[-1] if view.rounds else None)
    thumb_name, thumb = (f"round-{chosen.index}", chosen.image) if chosen is not None else ("source", record.source)
    return {
        "run_id": view.run_id,
        "status": view.status,
        "instruction": view.instruction,
        "created_at": view.created_at,
        "error": view.error,
        "rounds": len(view.rounds),
        "max_rounds": record.settings.max_rounds,
        "best_round": view.best_round,
        "semantic": chosen.semantic if chosen else None,
        "quality": chosen.quality if chosen else None,
        "overall": chosen.overall if chosen else None,
        "editor": view.editor,
        "thinker": view.thinker,
        "thumbnail": image_url(record.run_id, thumb_name, thumb, width=320),
        "demo_note": view.demo_note,
    }
