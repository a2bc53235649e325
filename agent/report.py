"""Render a self-contained HTML report of a run: the shared renderer with every image as a data URI."""

from __future__ import annotations

import base64
from typing import Any

from thinkedit.agent.settings import LoopSettings
from thinkedit.agent.viewer import render_page, run_view
from thinkedit.tools.store import ArtifactStore
from thinkedit.tools.types import ImageRef


def _data_uri(store: ArtifactStore, ref: dict[str, Any]) -> str:
    data = store.read_bytes(ImageRef.model_validate(ref))
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def render_report(data: dict[str, Any], store: ArtifactStore, settings: LoopSettings | None = None) -> str:
    """Return the report page for a trajectory dict (see ``thinkedit.agent.trajectory.trajectory``)."""
    view = run_view(
        {k: v for k, v in data.items() if k != "final_image"},  # the chosen round's image is already there
        settings=settings,
        image_src=lambda _name, ref: _data_uri(store, ref),
    )
    return render_page(view, title=f"thinkedit run {data['run_id']}")
