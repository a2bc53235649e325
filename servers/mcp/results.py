"""Render a run's view as MCP results: ``thinkedit://`` URIs, structured content, its JSON text, a link, a preview.

The whole result is kept under ``MAX_RESULT_BYTES`` (many clients refuse larger tool results), so
the image is downscaled to whatever room the text leaves; the full-size PNG stays reachable by
its resource URI and its file path.

Resource links suit MCP-native clients only. LangChain's adapters (``langchain-mcp-adapters``,
``langchain.mcp``) turn an image link into an image block with that URL, which their OpenAI and
Anthropic converters pass on and those APIs reject. The adapters identify as the generic client
libraries they are built on (the Python SDK's default ``mcp``; FastMCP's ``fastmcp``), so such a
client gets the result without the link: the preview image, the summary naming the full-size file
and URI, and the structured content. Desktop and IDE clients name themselves and keep the link.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from PIL.Image import Image
from pydantic import BaseModel, PrivateAttr

from thinkedit.agent.settings import ARTIFACT_URI, artifact_uri
from thinkedit.agent.run_images import load_run_image
from thinkedit.agent.state import RunState
from thinkedit.agent.view import RunView, read_run, run_view
from thinkedit.agent.viewer import settings_view
from thinkedit.servers.mcp.schemas import CandidateInfo, ImageInfo, PendingReview, RoundInfo, RunResult, UsageInfo
from thinkedit.servers.mcp.viewer import FOR_APPS, VIEW_META
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.images import load_image
from thinkedit.tools.store import ArtifactStore, downscale_png
from thinkedit.tools.types import ImageRef

if TYPE_CHECKING:
    from thinkedit.agent.runs import Runner, RunRecord
    from thinkedit.agent.tasks import RunTasks

#: Upper bound of one serialized tool result, image included.
MAX_RESULT_BYTES = 1_000_000
#: Room kept for the image block's own JSON and the JSON-RPC envelope.
_HEADROOM = 4096
#: Characters JSON writes as more than themselves (a backslash escape).
_ESCAPED = re.compile(r'["\\\x00-\x1f]')

# ---- URIs ----------------------------------------------------------------------------------

SCHEME = "thinkedit://"
_RUN_IMAGE = re.compile(r"^thinkedit://runs/(?P<run_id>[A-Za-z0-9_-]+)/(?P<part>final|source)\.png$")
_ROUND_IMAGE = re.compile(r"^thinkedit://runs/(?P<run_id>[A-Za-z0-9_-]+)/rounds/(?P<n>\d+)\.png$")


def run_uri(run_id: str) -> str:
    """Return the URI of a run's trajectory."""
    return f"{SCHEME}runs/{run_id}"


def final_uri(run_id: str) -> str:
    """Return the URI of a run's chosen image."""
    return f"{SCHEME}runs/{run_id}/final.png"


def source_uri(run_id: str) -> str:
    """Return the URI of a run's source image."""
    return f"{SCHEME}runs/{run_id}/source.png"


def round_uri(run_id: str, n: int) -> str:
    """Return the URI of one round's edited image."""
    return f"{SCHEME}runs/{run_id}/rounds/{n}.png"


async def resolve_uri(runner: Runner, uri: str) -> ImageRef:
    """Map a ``thinkedit://`` image URI to the stored image it names (run images by ``load_run_image``'s rules)."""
    if m := _RUN_IMAGE.match(uri):
        return await load_run_image(runner, m["run_id"], m["part"])
    if m := _ROUND_IMAGE.match(uri):
        return await load_run_image(runner, m["run_id"], f"round-{m['n'].lstrip('0')}")
    if m := ARTIFACT_URI.match(uri):
        return runner.store.lookup(m.group(1))
    raise BadInputError(
        f"{uri!r} is not a thinkedit image URI; use thinkedit://runs/<run_id>/final.png, "
        "thinkedit://runs/<run_id>/rounds/<n>.png or thinkedit://artifacts/<sha256>.png"
    )


# ---- which clients get resource links ------------------------------------------------------

#: ``auto``: decide by client name; ``always``/``never``: the same for every client.
LinkPolicy = Literal["auto", "always", "never"]
#: Default names of generic client libraries, through which agent frameworks relay results to models.
RELAY_NAMES = frozenset({"mcp", "fastmcp"})


def client_name(ctx: Context) -> str | None:
    """Return the name the client gave in ``clientInfo`` (None when it gave none)."""
    params = ctx.session.client_params
    return params.client_info.name if params is not None and params.client_info is not None else None


def wants_resource_links(ctx: Context, policy: LinkPolicy = "auto") -> bool:
    """Say whether this client's results carry resource links (unnamed and relay clients get none)."""
    if policy != "auto":
        return policy == "always"
    name = (client_name(ctx) or "").strip().lower()
    return bool(name) and name not in RELAY_NAMES and "langchain" not in name


# ---- a run as a RunResult ------------------------------------------------------------------


def image_info(ref: ImageRef, uri: str, store: ArtifactStore | None = None) -> ImageInfo:
    """Describe a stored image by its resource URI and a local path (a cached copy for remote stores)."""
    path = str(store.local_path(ref)) if store is not None and not store.local else ref.uri
    return ImageInfo(resource_uri=uri, path=path, width=ref.width, height=ref.height, sha256=ref.sha256)


class RenderedRun(RunResult):
    """A ``RunResult`` with, beside it and never on the wire, the stored final image and the App viewer's extras."""

    _final: ImageRef | None = PrivateAttr(default=None)
    _extras: dict[str, Any] | None = PrivateAttr(default=None)

    @property
    def final_ref(self) -> ImageRef | None:
        """Return the chosen image as stored (None before the run is done)."""
        return self._final

    @property
    def view_extras(self) -> dict[str, Any] | None:
        """Return what the App viewer shows beyond this result."""
        return self._extras


def run_result(
    record: RunRecord,
    state: RunState | None,
    *,
    live: bool,
    outputs_dir: Path,
    store: ArtifactStore | None = None,
    pending: dict[str, Any] | None = None,
) -> RenderedRun:
    """Describe a run from its record and checkpointed state (``live``: a task runs it now).

    ``pending`` is the critique a paused run waits on. The result keeps the chosen image's stored
    ref and what the App viewer shows beyond it, both taken from the same view.
    """
    view = run_view(state, record.settings, record, status="running" if live else record.status)
    checkpointed = state is not None and state.source is not None
    done = view.status == "done"
    run_id = view.run_id
    final = view.final_image if done else None
    final_info = image_info(final, final_uri(run_id), store) if final else None
    # The outputs are named once whole: ``write_outputs`` writes trajectory.json last, and another process that
    # drove the run may still be writing them when this one is asked.
    written = final is not None and (outputs_dir / "trajectory.json").is_file()
    if final_info is not None and written:
        final_info.path = str(outputs_dir / "final.png")
    result = RenderedRun(
        run_id=run_id,
        status=view.status,
        instruction=record.instruction,
        stop_reason=view.stop_reason if done else None,
        best_round=view.best_round if done else None,
        error=None if live else view.error,
        source_image=image_info(view.source_image, source_uri(run_id), store),
        reference_images=[image_info(ref, artifact_uri(ref), store) for ref in view.reference_images],
        final_image=final_info,
        rounds=[_round_info(run_id, r, store) for r in view.rounds],
        usage=UsageInfo.model_validate(view.usage.model_dump()) if view.usage and checkpointed else None,
        notes=view.notes,
        outputs_dir=str(outputs_dir) if written else None,
        review=PendingReview.model_validate({k: v for k, v in pending.items() if k in PendingReview.model_fields})
        if pending is not None and view.status == "awaiting_review"
        else None,
    )
    result.message = (f"{view.demo_note} " if view.demo_note else "") + _message(result)
    result._final, result._extras = final, view_extras(view, checkpointed)
    return result


async def read_run_result(
    runner: Runner, jobs: RunTasks, run_id: str, outputs_dir: Path, record: RunRecord | None = None
) -> RenderedRun:
    """Read a run once (record, checkpoint, pending review) and describe it, saying what the caller can do.

    ``record``: the run's record when the caller has just read it (else it is read here).
    """
    run = await read_run(runner, run_id, record)
    elsewhere = await jobs.running_elsewhere(run_id)
    live = jobs.is_live(run_id) or elsewhere
    pending = run.pending if run.record.status == "awaiting_review" and not live else None
    result = run_result(run.record, run.state, live=live, outputs_dir=outputs_dir, store=runner.store, pending=pending)
    if elsewhere:
        result.message = f"Run {run_id} is running in another thinkedit server process; call get_run again to wait."
    elif result.status == "running" and not live:
        result.message = (
            f"Run {run_id} was interrupted (no task runs it now, {len(result.rounds)} round(s) kept). "
            "Call get_run with resume=true to resume it from its last checkpoint."
        )
    return result


def view_extras(view: RunView, checkpointed: bool) -> dict[str, Any]:
    """Return what the App viewer shows of a run beyond its ``RunResult``: models, settings, extra round fields."""
    extras: dict[str, Any] = {
        "editor": view.editor,
        "thinker": view.thinker,
        "profile": view.profile,
        "settings": settings_view(view.settings),
        "created_at": view.created_at,
        "updated_at": view.updated_at,
    }
    if not checkpointed:
        return extras
    data = view.trajectory()
    skip = set(RunResult.model_fields) | {"source_image", "final_image", "rounds"}
    extras.update({k: v for k, v in data.items() if k not in skip and k not in extras})
    extras["rounds"] = {
        str(r["index"]): {k: v for k, v in r.items() if k not in RoundInfo.model_fields and v not in (None, "")}
        for r in data["rounds"]
    }
    return extras


def _round_info(run_id: str, r: Any, store: ArtifactStore | None = None) -> RoundInfo:
    """Describe one round of the view, its images as resource URIs."""
    candidates = [
        CandidateInfo(image=image_info(c.image, artifact_uri(c.image), store), **c.model_dump(exclude={"image"}))
        for c in r.candidates
    ]
    return RoundInfo(
        **r.model_dump(include=set(RoundInfo.model_fields) - {"image", "candidates", "usage"}),
        image=image_info(r.image, round_uri(run_id, r.index), store),
        candidates=candidates,
        usage=UsageInfo.model_validate(r.usage.model_dump()),
    )


def _message(r: RunResult) -> str:
    """Say in words where the run stands and what the caller can do next."""
    if r.status == "running":
        return (
            f"Run {r.run_id} goes on in the background ({len(r.rounds)} round(s) so far). "
            f"Call get_run with run_id '{r.run_id}' to wait for it, or cancel_run to stop it."
        )
    if r.status == "done" and r.final_image is not None:
        return (
            f"Done after {len(r.rounds)} round(s) (stop reason: {r.stop_reason}); chose round {r.best_round}. "
            + (f"Cost: {_cost(r.usage)}. " if r.usage is not None else "")
            + f"Full-size image: {r.final_image.path} ({r.final_image.resource_uri})."
        )
    if r.status == "awaiting_review" and r.review is not None:
        return (
            f"Run {r.run_id} waits for review after round {r.review.round} (semantic {r.review.semantic}, "
            f"quality {r.review.quality}). Proposed instruction: {r.review.proposed_instruction!r}. "
            "Answer with review_run: decision 'approve', 'edit' with your own instruction, or 'stop'."
        )
    if r.status == "cancelled":
        return f"Run {r.run_id} was cancelled after {len(r.rounds)} round(s)."
    if r.status == "error":
        return f"Run {r.run_id} failed after {len(r.rounds)} round(s): {r.error}"
    return f"Run {r.run_id} is {r.status}."


def _cost(usage: UsageInfo) -> str:
    """Say what a run cost in a few words."""
    price = f"~${usage.cost_usd:.4f}" if usage.cost_usd is not None else "price unknown"
    return f"{usage.images_edited} image(s) edited, {usage.tokens:,} tokens, {price}"


# ---- a model as a CallToolResult -----------------------------------------------------------


def to_json(model: BaseModel) -> tuple[dict[str, Any], str]:
    """Return a result's structured content and its JSON text: the one time a result is serialised."""
    structured = model.model_dump(mode="json")
    return structured, json.dumps(structured, indent=1)


def tool_result(
    model: BaseModel,
    summary: str,
    *,
    image: Image | bytes | None = None,
    link: ImageInfo | None = None,
    is_error: bool = False,
) -> CallToolResult:
    """Return ``model`` as structured content and JSON text, with a summary, a link and a preview image.

    ``image`` may be the stored PNG's bytes: sent as they are when they fit, so nothing is re-encoded.
    Inside a run tool answering a client with MCP Apps (``viewer.for_apps``), the result's ``_meta``
    also carries what the viewer shows beyond it. Sizes are bounded from the parts' lengths (the JSON
    text is at least as long as the structured content it spells), never by serialising again.
    """
    structured, text = to_json(model)
    content: list[ContentBlock] = [TextContent(type="text", text=summary)]
    used = 2 * _text_size(summary) + _text_size(text) + len(text) + 256
    if link is not None:
        description = f"{link.width}x{link.height} PNG, also at {link.path}"
        content.append(
            ResourceLink(
                type="resource_link",
                uri=link.resource_uri,
                name=Path(link.resource_uri).name,
                title="full-size PNG",
                description=description,
                mime_type="image/png",
            )
        )
        used += 2 * _text_size(link.resource_uri) + _text_size(description) + 256
    content.append(TextContent(type="text", text=text))
    if image is not None:
        room = MAX_RESULT_BYTES - used - _HEADROOM
        if room > 0:
            budget = room * 3 // 4
            if isinstance(image, bytes):
                png = image if len(image) <= budget else downscale_png(load_image(image, cache=False), budget)
            else:
                png = downscale_png(image, budget)
            data = base64.b64encode(png).decode("ascii")
            if len(data) <= room:
                content.insert(1, ImageContent(type="image", data=data, mime_type="image/png"))
                used += len(data) + 128
    meta = None
    extras = model.view_extras if isinstance(model, RenderedRun) and FOR_APPS.get() else None
    if extras is not None:
        if used + _text_size(json.dumps(extras)) > MAX_RESULT_BYTES:
            extras = {k: v for k, v in extras.items() if k != "rounds"}  # raw thinker outputs are the bulk
        meta = {VIEW_META: extras}
    return CallToolResult(content=content, structured_content=structured, is_error=is_error, _meta=meta)


def _text_size(text: str) -> int:
    """Bound the bytes a string takes as a JSON string (each escape written as at most six characters)."""
    return len(text.encode()) + 5 * len(_ESCAPED.findall(text)) + 2


async def tool_result_async(
    model: BaseModel,
    summary: str,
    *,
    image: Image | bytes | None = None,
    link: ImageInfo | None = None,
    is_error: bool = False,
) -> CallToolResult:
    """Build ``tool_result`` on a worker thread when it carries an image (downscaling and PNG encoding take seconds)."""
    if image is None:
        return tool_result(model, summary, link=link, is_error=is_error)
    return await asyncio.to_thread(tool_result, model, summary, image=image, link=link, is_error=is_error)
