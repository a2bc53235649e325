"""The tool handlers: each translates its arguments, calls one agent function, renders the result.

The SDK validates a call's arguments into the tool's input model once; the server's dispatch
(``server.dispatch``) waits for start-up and calls the handler of the tool's name with that model.
Which editor or thinker a call names is mapped to its config here too (``choose``, ``run_settings``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from mcp_types import InputRequiredResult
from pydantic import ValidationError

from thinkedit.agent.oneshot import critique_once, edit_once
from thinkedit.agent.review import check_answer, review_answer
from thinkedit.agent.runs import RunRecord
from thinkedit.agent.settings import LoopSettings, artifact_uri
from thinkedit.servers.mcp.lifespan import AppState
from thinkedit.servers.mcp.live_runs import ProgressReporter
from thinkedit.servers.mcp.results import image_info, read_run_result, tool_result_async, wants_resource_links
from thinkedit.servers.mcp.review import InlineReview, continuation
from thinkedit.servers.mcp.schemas import (
    BackendInfo,
    CancelRunInput,
    CritiqueEditInput,
    CritiqueOutput,
    EditImageInput,
    EditOutput,
    GetRunInput,
    ListModelsInput,
    ModelsOutput,
    ProfileInfo,
    ReviewRunInput,
    ThinkWhileEditInput,
)
from thinkedit.tools.config import EditorConfig, ThinkerConfig
from thinkedit.tools.errors import BadInputError, problems
from thinkedit.tools.images import intake_notes
from thinkedit.tools.profiles import DEMO_NOTE, Profile, available_profiles, is_demo_editor, load_profile, missing_keys
from thinkedit.tools.secrets import mask_url
from thinkedit.tools.thinkers.providers import require_packages
from thinkedit.tools.types import parse_budget

log = logging.getLogger(__name__)


def app_state(ctx: Context) -> AppState:
    """Return the state the lifespan built."""
    return ctx.request_context.lifespan_context


async def run_tool_result(
    app: AppState, run_id: str, notes: list[str] | None = None, *, links: bool = True, record: RunRecord | None = None
) -> CallToolResult:
    """Describe a run as a tool result: the chosen image (when done), its link and the trajectory.

    ``notes`` (what happened in an inline review) lead the message; ``links``: add the resource link;
    ``record``: the run's record when the caller has just read it.
    """
    result = await read_run_result(app.runner, app.jobs, run_id, app.jobs.outputs_dir(run_id), record)
    if notes:
        result.message = " ".join([*notes, result.message or ""]).strip()
    final = result.final_ref
    image = await asyncio.to_thread(app.runner.store.read_bytes, final) if final is not None else None  # as stored
    link = result.final_image if links else None
    return await tool_result_async(result, result.message, image=image, link=link, is_error=result.status == "error")


def links_for(app: AppState, ctx: Context) -> bool:
    """Say whether this call's client gets resource links (see ``clients``)."""
    return wants_resource_links(ctx, app.config.resource_links)  # type: ignore[arg-type]


async def follow_run(
    app: AppState, ctx: Context, run_id: str, wait: float, max_rounds: int, *, started_here: bool = False
) -> CallToolResult | InputRequiredResult:
    """Follow a run for the call's wait budget with progress notifications, then return it.

    ``started_here``: this call started the run, so cancelling the call stops the run too.
    """
    reporter = ProgressReporter(ctx.report_progress, max_rounds)
    started = asyncio.get_running_loop().time()
    try:
        await app.jobs.follow(run_id, wait, reporter)
        budget = wait - (asyncio.get_running_loop().time() - started)
        return await settle_review(app, ctx, run_id, budget, reporter)
    except asyncio.CancelledError:  # also while an inline review's answer drives the run on
        if started_here:
            app.jobs.cancel_soon(run_id)
        raise


async def settle_review(
    app: AppState, ctx: Context, run_id: str, budget: float, reporter: ProgressReporter
) -> CallToolResult | InputRequiredResult:
    """Return the run, first asking the person inline while it waits for review (where the client can)."""
    notes: list[str] = []
    record: RunRecord | None = app.runner.registry.load(run_id)  # read once: the result renders it too
    if app.jobs.awaits_review(run_id, record):
        review = InlineReview(app, ctx, lambda rid, wait: app.jobs.follow(rid, wait, reporter), budget)
        if (asked := await review.settle(run_id)) is not None:
            return asked
        notes, record = review.notes, None  # the review moved the run on: read it afresh
    return await run_tool_result(app, run_id, notes, links=links_for(app, ctx), record=record)


async def continue_review(
    app: AppState, ctx: Context, *, started_here: bool = False
) -> CallToolResult | InputRequiredResult | None:
    """Apply the review answer a 2026-07-28 retry carries (None when this call is no such retry).

    ``started_here``: the retried call started the run (``think_while_edit``), so cancelling it stops the run,
    as cancelling the first call would have.
    """
    if ctx.request_state is None:  # only a retry carries our state back
        return None
    retry = continuation(ctx)
    if retry is None:
        return None
    record = app.runner.registry.load(retry.run_id)
    reporter = ProgressReporter(ctx.report_progress, record.settings.max_rounds)
    follow = lambda rid, wait: app.jobs.follow(rid, wait, reporter)  # noqa: E731
    review = InlineReview(app, ctx, follow, retry.budget, notes=retry.notes, asked=retry.asked)
    try:
        asked = await review.answer(retry.run_id, retry.answer, retry.round)
    except asyncio.CancelledError:
        if started_here:
            app.jobs.cancel_soon(retry.run_id)
        raise
    if asked is not None:
        return asked
    return await run_tool_result(app, retry.run_id, review.notes, links=links_for(app, ctx))


async def think_while_edit(args: ThinkWhileEditInput, ctx: Context) -> CallToolResult | InputRequiredResult:
    """Start a run, follow it for the wait budget, and return it (done, or still running)."""
    app = app_state(ctx)
    if (retried := await continue_review(app, ctx, started_here=True)) is not None:
        return retried
    settings = run_settings(  # first: a missing API key or a bad budget fails before any work
        app.settings,
        max_rounds=args.max_rounds,
        seed=args.seed,
        editor=args.editor,
        thinker=args.thinker,
        review=args.review,
        budget=args.budget,
    )
    image = await app.images.load(args.image)
    references = [await app.images.load(ref) for ref in args.references]
    source_name = None if args.image.strip().startswith("data:") else args.image.strip()
    record = await asyncio.to_thread(
        app.runner.prepare, image, args.instruction, settings, references=references, source_name=source_name
    )
    await app.jobs.start(record)
    return await follow_run(app, ctx, record.run_id, args.wait_seconds, settings.max_rounds, started_here=True)


async def get_run(args: GetRunInput, ctx: Context) -> CallToolResult | InputRequiredResult:
    """Return a run, waiting for it if it is running; resume it if a restart interrupted it."""
    app = app_state(ctx)
    if (retried := await continue_review(app, ctx)) is not None:
        return retried
    record = app.runner.registry.load(args.run_id)
    idle = not app.jobs.is_live(args.run_id) and not await app.jobs.running_elsewhere(args.run_id)
    if record.status == "running" and idle and args.resume:
        await app.jobs.resume(args.run_id)
    return await follow_run(app, ctx, args.run_id, args.wait_seconds, record.settings.max_rounds)


async def review_run(args: ReviewRunInput, ctx: Context) -> CallToolResult | InputRequiredResult:
    """Answer a paused run's review and follow it to its next pause or its end."""
    app = app_state(ctx)
    if (retried := await continue_review(app, ctx)) is not None:
        return retried
    record = app.runner.registry.load(args.run_id)
    if record.status != "awaiting_review" or app.jobs.is_live(args.run_id):
        raise BadInputError(f"run {args.run_id} is not awaiting review (its status is {record.status})")
    pending = await app.runner.pending_review(args.run_id)
    check_answer(args.run_id, record.status, pending, args.round)  # a tool error now, not a failed task later
    await app.jobs.resume(args.run_id, review=review_answer(args.decision, args.instruction), pending_round=args.round)
    return await follow_run(app, ctx, args.run_id, args.wait_seconds, record.settings.max_rounds)


async def cancel_run(args: CancelRunInput, ctx: Context) -> CallToolResult:
    """Stop a run at its next safe point and mark it cancelled (finished runs are left as they are)."""
    app = app_state(ctx)
    await app.jobs.cancel_run(args.run_id)
    return await run_tool_result(app, args.run_id, links=links_for(app, ctx))


async def edit_image(args: EditImageInput, ctx: Context) -> CallToolResult:
    """Make one edit and return the image (no critique, no loop)."""
    app = app_state(ctx)
    image = await app.images.load(args.image)
    references = [await app.images.load(ref) for ref in args.references]
    editor = choose("editor", args.editor, app.settings.editor)
    await ctx.report_progress(0, 1, f"editing with {editor.model}")
    single = await edit_once(app.backends, editor, app.runner.store, image, args.instruction, args.seed or 0,
                             references=references)
    await ctx.report_progress(1, 1, f"edited in {single.seconds:.2f} s")
    out = EditOutput(
        image=image_info(single.image, artifact_uri(single.image), app.runner.store),
        source_image=image_info(single.source, artifact_uri(single.source), app.runner.store),
        reference_images=[image_info(ref, artifact_uri(ref), app.runner.store) for ref in single.references],
        instruction=single.instruction,
        seed=single.seed,
        editor=single.model,
        seconds=round(single.seconds, 4),
        notes=[DEMO_NOTE, *intake_notes(image)] if is_demo_editor(editor) else intake_notes(image),
    )
    summary = (
        (f"{DEMO_NOTE} " if is_demo_editor(editor) else "") + f"Edited with {out.editor} in {out.seconds:.2f} s. "
        f"Full-size image: {out.image.path} ({out.image.resource_uri})."
    )
    link = out.image if links_for(app, ctx) else None
    edited = await asyncio.to_thread(app.runner.store.read_bytes, single.image)  # the stored PNG, if it fits
    return await tool_result_async(out, summary, image=edited, link=link)


async def critique_edit(args: CritiqueEditInput, ctx: Context) -> CallToolResult:
    """Judge an edit with the thinker: scores, reasoning and a refined instruction."""
    app = app_state(ctx)
    source = await app.images.load(args.source)
    edited = await app.images.load(args.edited)
    thinker = choose("thinker", args.thinker, app.settings.thinker)
    await ctx.report_progress(0, 1, f"critiquing with {thinker.model}")
    verdict, seconds = await critique_once(app.backends, thinker, source, edited, args.instruction)
    out = CritiqueOutput(
        semantic=verdict.semantic,
        quality=verdict.quality,
        overall=verdict.overall,
        satisfied=verdict.satisfied,
        reasoning=verdict.reasoning,
        refined_instruction=verdict.refined_instruction,
        thinker=thinker.model,
        seconds=round(seconds, 4),
    )
    await ctx.report_progress(1, 1, f"semantic {out.semantic:g} · quality {out.quality:g}")
    summary = f"semantic {out.semantic:g} · quality {out.quality:g} · overall {out.overall:g}: {out.reasoning}"
    return await tool_result_async(out, summary)


async def list_models(args: ListModelsInput, ctx: Context) -> CallToolResult:
    """List the server's default editor and thinker and every profile's."""
    app = app_state(ctx)

    def info(config: Any) -> BackendInfo:  # a proxy's password in the URL stays on the server
        return BackendInfo(backend=config.backend, model=config.model,
                           base_url=mask_url(config.base_url) if config.base_url else None)

    out = ModelsOutput(
        profile=app.config.profile,
        editor=info(app.settings.editor),
        thinker=info(app.settings.thinker),
        max_rounds=app.settings.max_rounds,
        profiles=[
            ProfileInfo(name=p.name, description=p.description.strip(), editor=info(p.editor), thinker=info(p.thinker))
            for p in all_profiles()
        ],
    )
    summary = f"profile {out.profile}: editor {out.editor.model} ({out.editor.backend}), thinker {out.thinker.model}"
    return await tool_result_async(out, summary)


def all_profiles() -> list[Profile]:
    """Load every packaged profile."""
    return [load_profile(name) for name in available_profiles()]


def choose(kind: Literal["editor", "thinker"], name: str | None, default: Any) -> Any:
    """Return the editor or thinker a call names (a profile or a model name), or the server's default."""
    if not name:
        return default
    profiles = all_profiles()
    for profile in profiles:
        config = getattr(profile, kind)
        if name in {profile.name, config.model}:
            return config
    choices = sorted({p.name for p in profiles} | {getattr(p, kind).model for p in profiles})
    raise BadInputError(f"unknown {kind} {name!r}; choose a profile or {kind} model from list_models: {choices}")


def run_settings(
    base: LoopSettings,
    *,
    max_rounds: int | None = None,
    seed: int | None = None,
    editor: str | None = None,
    thinker: str | None = None,
    review: bool = False,
    budget: str | None = None,
) -> LoopSettings:
    """Apply one call's choices to the server's settings (review only when the call asks for it).

    A key the chosen editor or thinker needs and does not find is an error now, before any work.
    """
    chosen_editor: EditorConfig = choose("editor", editor, base.editor)
    chosen_thinker: ThinkerConfig = choose("thinker", thinker, base.thinker)
    update: dict[str, Any] = {"editor": chosen_editor, "thinker": chosen_thinker, "review": review}
    if max_rounds is not None:
        update["max_rounds"] = max_rounds
    if seed is not None:
        update["seed"] = seed
    if budget is not None:
        update["budget"] = parse_budget(budget).model_dump()
    require_packages(chosen_thinker.backend, chosen_thinker.model)
    if missing := missing_keys(chosen_editor, chosen_thinker):
        raise BadInputError(f"this run needs an API key in {', '.join('$' + k for k in missing)}, which is not set")
    try:
        return base.updated(**update)
    except ValidationError as exc:
        raise BadInputError(f"invalid run settings: {problems(exc)}") from exc
