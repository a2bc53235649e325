"""The one run renderer: a page template, a small script and a stylesheet, fed a run's view as JSON.

``report.html`` (with the exported ``trajectory.json`` and PNGs), the MCP App viewer and the gallery
(``thinkedit ui``) all draw a run with these three package files, so the three places show the same
picture. Nothing is fetched from a CDN; a feeder adds only its own small script (how new data
arrives, how a review is sent).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import shutil
import string
from collections.abc import Callable
from functools import cache
from html import escape
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thinkedit.agent.settings import LoopSettings
from thinkedit.tools.types import ImageRef

if TYPE_CHECKING:  # a page is rendered without them: the MCP server builds its viewer before the agent loads
    from thinkedit.agent.state import RunState
    from thinkedit.tools.store import ArtifactStore

#: The loop settings a run view shows (the rest are storage details).
VIEW_SETTINGS = (
    "max_rounds", "semantic_threshold", "quality_threshold", "edit_from", "seed", "seed_policy",
    "candidates", "selection", "review",
)

ImageSource = Callable[[str, dict[str, Any]], str | None]


@cache
def asset(name: str) -> str:
    """Return one of the renderer's files (``run.html``, ``run.js``, ``run.css``)."""
    return resources.files("thinkedit.agent").joinpath(f"templates/{name}").read_text("utf-8")


def settings_view(settings: LoopSettings | None) -> dict[str, Any] | None:
    """Return what a viewer shows of a run's settings: loop knobs, and the editor's and thinker's backend and model."""
    if settings is None:
        return None
    view: dict[str, Any] = settings.model_dump(include=set(VIEW_SETTINGS))
    view["editor"] = {"backend": settings.editor.backend, "model": settings.editor.model}
    view["thinker"] = {"backend": settings.thinker.backend, "model": settings.thinker.model}
    return view


def page_data(
    data: dict[str, Any], *, settings: LoopSettings | None = None, image_src: ImageSource | None = None, **extra: Any
) -> dict[str, Any]:
    """Return a run view's JSON ready for the renderer: images given a ``src`` by ``image_src(name, ref)``.

    Names are ``source``, ``reference-N`` (N = 2, 3, …: the image number the thinker is told),
    ``final`` and ``round-N``; ``extra`` adds live fields (``progress``,
    ``review``, ``created_at``, ``error``).
    """
    view = {**data, "rounds": [dict(r) for r in data.get("rounds", [])]}
    if settings is not None:
        view["settings"] = settings_view(settings)

    def with_src(name: str, ref: dict[str, Any] | None) -> dict[str, Any] | None:
        if ref is None or image_src is None:
            return ref
        return {**ref, "src": image_src(name, ref)}

    view["source_image"] = with_src("source", data.get("source_image"))
    view["reference_images"] = [
        with_src(f"reference-{n}", ref) for n, ref in enumerate(data.get("reference_images") or [], 2)
    ]
    if data.get("final_image") is not None:
        view["final_image"] = with_src("final", data["final_image"])
    for r in view["rounds"]:
        r["image"] = with_src(f"round-{r['index']}", r["image"])
    view.update({k: v for k, v in extra.items() if v is not None})
    return view


def json_for_script(data: Any) -> str:
    """Serialise ``data`` for an inline ``<script>`` block (no ``</script>`` or ``<!--`` can close it early)."""
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e").replace("\u2028", "\\u2028")


def content_policy(*scripts: str) -> str:
    """Return a page's Content-Security-Policy: only these inline scripts run, nothing is fetched from elsewhere.

    ``scripts`` are the exact texts of the page's inline ``<script>`` elements (their hashes are
    allowed); images come from the page's own server or data/blob URLs, requests go only back to it.
    """
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'" for text in scripts
    ) or "'none'"
    return (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'"
    )


def run_page_scripts(feed: str = "") -> tuple[str, str]:
    """Return the texts of the run page's two inline scripts (the renderer and the feed), as the template holds them."""
    return f"\n{asset('run.js')}\n", f"\n{feed}\n"


def render_page(data: dict[str, Any] | None, *, title: str, feed: str = "") -> str:
    """Return the run page: the template with the stylesheet, the renderer and ``feed`` inlined.

    With ``data`` the page draws that run by itself (report.html); a ``feed`` script mounts the
    renderer itself and feeds it (the gallery, the MCP App). The page carries its own
    Content-Security-Policy (a meta tag, so a report opened from disk has one too).
    """
    return string.Template(asset("run.html")).substitute(
        title=escape(title),
        policy=escape(content_policy(*run_page_scripts(feed))),
        style=asset("run.css"),
        script=asset("run.js"),
        data=json_for_script(data) if data is not None else "",
        feed=feed,
        feed_attr=' data-feed="1"' if feed else "",
    )


#: Where ``render_report`` splices an image in: its call's nonce, then the image's index.
_IMAGE_SLOT = re.compile(rb"thinkedit-image-([0-9a-f]{16})-([0-9]+)")


def render_report(data: dict[str, Any], store: ArtifactStore, settings: LoopSettings | None = None) -> bytes:
    """Return the self-contained report page (UTF-8) of a run view's JSON, every image inlined as a data URI.

    The page is laid out with a short placeholder where each image goes, and the data URIs are
    spliced into its encoded bytes last, in one pass: they are most of the page and, being only
    base64 and ``data:image/png;base64,``, need none of the JSON and ``<script>`` escaping (nor the
    text encoding) the rest of the run's data goes through.
    """
    nonce = secrets.token_hex(8)  # the run's text cannot hold it by chance
    uris: list[bytes] = []

    def placeholder(_name: str, ref: dict[str, Any]) -> str:
        uris.append(b"data:image/png;base64," + base64.b64encode(store.read_bytes(ImageRef.model_validate(ref))))
        return f"thinkedit-image-{nonce}-{len(uris) - 1}"

    view = page_data(
        {k: v for k, v in data.items() if k != "final_image"},  # the chosen round's image is already there
        settings=settings,
        image_src=placeholder,
    )
    page = render_page(view, title=f"thinkedit run {data['run_id']}").encode()
    ours = nonce.encode()
    return _IMAGE_SLOT.sub(lambda m: uris[int(m[2])] if m[1] == ours else m[0], page)


def _remove_earlier_rounds(out: Path, keep: set[int]) -> None:
    """Remove the round PNGs an earlier export into ``out`` wrote (as its trajectory.json lists them) past ``keep``.

    Reusing an output folder for a run of fewer rounds would otherwise leave the earlier run's later
    rounds beside this run's report; files the trajectory does not name are left alone.
    """
    try:
        earlier = json.loads((out / "trajectory.json").read_text())
        indexes = {int(r["index"]) for r in earlier["rounds"]}
    except (OSError, ValueError, TypeError, KeyError):  # none there, or not ours
        return
    for index in indexes - keep:
        (out / f"round-{index}.png").unlink(missing_ok=True)


def write_outputs(state: RunState, store: ArtifactStore, out_dir: str | Path) -> dict[str, Path]:
    """Export a run into ``out_dir`` (final.png, round-N.png, trajectory.json, report.html); return the paths by name."""
    from thinkedit.agent.view import run_view

    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    _remove_earlier_rounds(out, keep={r.index for r in state.rounds})
    paths: dict[str, Path] = {}
    for r in state.rounds:
        target = out / f"round-{r.index}.png"
        shutil.copyfile(store.local_path(r.image), target)
        paths[f"round-{r.index}"] = target
    if state.final_image is not None:
        paths["final"] = out / "final.png"
        shutil.copyfile(store.local_path(state.final_image), paths["final"])
    data = run_view(state, state.settings).trajectory()
    paths["report"] = out / "report.html"
    paths["report"].write_bytes(render_report(data, store, state.settings))
    paths["trajectory"] = out / "trajectory.json"  # last: once it is there, the folder is whole
    paths["trajectory"].write_text(json.dumps(data, indent=2))
    return paths
