"""Build tool results: a downscaled image, a resource link, structured content and its JSON text.

The whole result is kept under ``MAX_RESULT_BYTES`` (many clients refuse larger tool results), so
the image is downscaled to whatever room the text leaves; the full-size PNG stays reachable by
its resource URI and its file path.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from PIL.Image import Image
from pydantic import BaseModel

from thinkedit.agent.runs import RunRecord
from thinkedit.agent.state import RunState
from thinkedit.agent.trajectory import trajectory
from thinkedit.servers.mcp import refs
from thinkedit.servers.mcp.schemas import (
    CandidateInfo,
    ImageInfo,
    PendingReview,
    RoundInfo,
    RunResult,
    UsageInfo,
)
from thinkedit.tools.images import load_image
from thinkedit.tools.store import downscale_png
from thinkedit.tools.profiles import DEMO_NOTE, is_demo
from thinkedit.tools.store import ArtifactStore
from thinkedit.tools.types import ImageRef

#: Upper bound of one serialized tool result, image included.
MAX_RESULT_BYTES = 1_000_000
#: Room kept for the image block's own JSON and the JSON-RPC envelope.
_HEADROOM = 4096


def image_info(ref: ImageRef, uri: str, store: ArtifactStore | None = None) -> ImageInfo:
    """Describe a stored image by its resource URI and a local path (a cached copy for remote stores)."""
    path = str(store.local_path(ref)) if store is not None and not store.local else ref.uri
    return ImageInfo(resource_uri=uri, path=path, width=ref.width, height=ref.height, sha256=ref.sha256)


def run_result(
    record: RunRecord,
    state: RunState | None,
    *,
    live: bool,
    outputs_dir: Path,
    store: ArtifactStore | None = None,
    pending: dict[str, Any] | None = None,
) -> RunResult:
    """Describe a run from its record and checkpointed state (``live``: a task runs it now).

    ``pending`` is the critique a paused run waits on (``Runner.pending_review``).
    """
    run_id = record.run_id
    demo = is_demo(record.settings.editor, record.settings.thinker)
    status = "running" if live else record.status
    data = trajectory(state, status=status) if state is not None else {"rounds": []}
    rounds = [_round_info(run_id, r, store) for r in data["rounds"]]
    usage = UsageInfo.model_validate(data["usage"]) if data.get("usage") else None
    final = state.final_image if state is not None and status == "done" else None
    final_info = image_info(final, refs.final_uri(run_id), store) if final else None
    if final_info is not None and (outputs_dir / "final.png").is_file():
        final_info.path = str(outputs_dir / "final.png")
    result = RunResult(
        run_id=run_id,
        status=status,
        instruction=record.instruction,
        stop_reason=state.stop_reason if state is not None and status == "done" else None,
        best_round=state.best_round if state is not None and status == "done" else None,
        error=None if live else record.error,
        source_image=image_info(record.source, refs.source_uri(run_id), store),
        reference_images=[image_info(ref, refs.image_uri(ref), store) for ref in record.references],
        final_image=final_info,
        rounds=rounds,
        usage=usage,
        notes=[DEMO_NOTE, *record.notes] if demo else list(record.notes),
        outputs_dir=str(outputs_dir) if final and outputs_dir.is_dir() else None,
        review=PendingReview.model_validate({k: v for k, v in pending.items() if k in PendingReview.model_fields})
        if pending is not None and status == "awaiting_review"
        else None,
    )
    result.message = (f"{DEMO_NOTE} " if demo else "") + _message(result)
    return result


def _round_info(run_id: str, r: dict[str, Any], store: ArtifactStore | None = None) -> RoundInfo:
    """Describe one trajectory round; keys the schema does not know yet are left out, not errors."""
    plain = {k: v for k, v in r.items() if k in RoundInfo.model_fields and k not in {"image", "candidates", "usage"}}
    usage = UsageInfo.model_validate(r["usage"]) if r.get("usage") else None
    candidates = [
        CandidateInfo(
            image=image_info(ref := ImageRef.model_validate(c["image"]), refs.image_uri(ref), store),
            **{k: v for k, v in c.items() if k in CandidateInfo.model_fields and k != "image"},
        )
        for c in r.get("candidates") or []
    ]
    image = image_info(ImageRef.model_validate(r["image"]), refs.round_uri(run_id, r["index"]), store)
    return RoundInfo(image=image, candidates=candidates, usage=usage, **plain)


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
    """
    structured = model.model_dump(mode="json")
    content: list[ContentBlock] = [TextContent(type="text", text=summary)]
    if link is not None:
        content.append(
            ResourceLink(
                type="resource_link",
                uri=link.resource_uri,
                name=Path(link.resource_uri).name,
                title="full-size PNG",
                description=f"{link.width}x{link.height} PNG, also at {link.path}",
                mime_type="image/png",
            )
        )
    content.append(TextContent(type="text", text=json.dumps(structured, indent=1)))
    result = CallToolResult(content=content, structured_content=structured, is_error=is_error)
    if image is not None:
        room = MAX_RESULT_BYTES - _size(result) - _HEADROOM
        if room > 0:
            budget = room * 3 // 4
            if isinstance(image, bytes):
                png = image if len(image) <= budget else downscale_png(load_image(image, cache=False), budget)
            else:
                png = downscale_png(image, budget)
            data = base64.b64encode(png).decode("ascii")
            if len(data) <= room:
                content.insert(1, ImageContent(type="image", data=data, mime_type="image/png"))
                result = CallToolResult(content=content, structured_content=structured, is_error=is_error)
    return result


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


def _size(result: CallToolResult) -> int:
    """Measure a result as it travels (JSON bytes)."""
    return len(result.model_dump_json(by_alias=True, exclude_none=True).encode())
