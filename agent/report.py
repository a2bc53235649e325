"""Render a self-contained HTML report of a run (images embedded as data URIs)."""

from __future__ import annotations

import base64
import string
from html import escape
from importlib import resources
from typing import Any

from thinkedit.tools.store import ArtifactStore
from thinkedit.tools.types import ImageRef


def _data_uri(store: ArtifactStore, ref: dict[str, Any]) -> str:
    data = store.read_bytes(ImageRef.model_validate(ref))
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure(title: str, image_uri: str, body: str, *, chosen: bool = False) -> str:
    css = ' class="chosen"' if chosen else ""
    tag = ' <span class="tag">chosen</span>' if chosen else ""
    return (
        f"<figure{css}><img src=\"{image_uri}\" alt=\"{escape(title)}\">"
        f"<figcaption><b>{escape(title)}</b>{tag}{body}</figcaption></figure>"
    )


def _section(label: str, text: Any) -> str:
    if text in (None, ""):
        return ""
    return f'<div class="label">{escape(label)}</div><pre>{escape(str(text))}</pre>'


def render_report(data: dict[str, Any], store: ArtifactStore) -> str:
    """Return the report page for a trajectory dict (see ``thinkedit.agent.trajectory.trajectory``)."""
    source = data["source_image"]
    figures = [
        _figure(
            f"Source ({source['width']}×{source['height']})",
            _data_uri(store, source),
            _section("Original instruction", data["instruction"]),
        )
    ]
    for n, ref in enumerate(data.get("reference_images") or [], 2):
        figures.append(_figure(f"Reference: image {n} ({ref['width']}×{ref['height']})", _data_uri(store, ref), ""))
    for r in data["rounds"]:
        scores = (
            f'<div class="scores">semantic {r["semantic"]:g} · quality {r["quality"]:g}'
            f' · overall {r["overall"]:.2f}</div>'
            if r["semantic"] is not None
            else '<div class="scores">not critiqued</div>'
        )
        body = (
            scores
            + _section("Instruction used", r["instruction"])
            + _section("Reasoning", r["reasoning"])
            + _section("Refined instruction", r["refined_instruction"])
            + _section(
                "Best of candidates",
                ", ".join(f"seed {c['seed']}: {c['overall']:g}" for c in r.get("candidates") or []),
            )
            + _section("Timing", f"edit {r['edit_seconds']:.2f} s · think {r['think_seconds']:.2f} s · seed {r['seed']}")
        )
        figures.append(
            _figure(
                f"Round {r['index']}",
                _data_uri(store, r["image"]),
                body,
                chosen=r["index"] == data["best_round"],
            )
        )
    models = f"editor {data.get('editor') or '?'} · thinker {data.get('thinker') or '?'}"
    if any(str(data.get(k) or "").startswith("tiny-") for k in ("editor", "thinker")):
        models += (
            ' <div class="warn">Random-weight tiny models: the images are noise and the verdicts '
            "meaningless; they exist to run every code path offline.</div>"
        )
    template = resources.files("thinkedit.agent").joinpath("templates/report.html").read_text("utf-8")
    return string.Template(template).substitute(
        models=models,
        run_id=escape(data["run_id"]),
        instruction=escape(data["instruction"]),
        status=escape(str(data["status"])),
        stop_reason=escape(str(data["stop_reason"])),
        best_round=escape(str(data["best_round"])),
        round_count=len(data["rounds"]),
        figures="\n".join(figures),
    )
