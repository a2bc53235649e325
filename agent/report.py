"""Render a self-contained HTML report of a run: the shared renderer with every image as a data URI."""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

from thinkedit.agent.settings import LoopSettings
from thinkedit.agent.viewer import render_page, run_view
from thinkedit.tools.store import ArtifactStore
from thinkedit.tools.types import ImageRef


def _data_uri(store: ArtifactStore, ref: dict[str, Any]) -> str:
    data = store.read_bytes(ImageRef.model_validate(ref))
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def render_report(data: dict[str, Any], store: ArtifactStore, settings: LoopSettings | None = None) -> str:
    """Return the report page for a trajectory dict (see ``thinkedit.agent.trajectory.trajectory``).

    The page is laid out with a short placeholder where each image goes, and the data URIs are
    spliced in last, in one pass: they are most of the page (a megabyte for three rounds) and,
    being only base64 and ``data:image/png;base64,``, need none of the JSON and ``<script>``
    escaping the rest of the run's data goes through.
    """
    nonce = secrets.token_hex(8)  # the run's text cannot hold it by chance
    uris: list[str] = []

    def placeholder(_name: str, ref: dict[str, Any]) -> str:
        uris.append(_data_uri(store, ref))
        return f"thinkedit-image-{nonce}-{len(uris) - 1}"

    view = run_view(
        {k: v for k, v in data.items() if k != "final_image"},  # the chosen round's image is already there
        settings=settings,
        image_src=placeholder,
    )
    page = render_page(view, title=f"thinkedit run {data['run_id']}")
    return re.sub(f"thinkedit-image-{nonce}-([0-9]+)", lambda m: uris[int(m.group(1))], page)
