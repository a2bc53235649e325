"""``thinkedit edit``, ``resume`` and ``runs``: start a run, finish one, list them."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thinkedit.servers.options import (
    add_data_dir, add_max_rounds, add_model_servers, add_profile, add_record, add_storage_options, int_at_least,
    out_folder, storage_urls,
)
from thinkedit.tools.config import default_data_dir
from thinkedit.tools.errors import BadInputError

if TYPE_CHECKING:
    from thinkedit.agent.runs import RunRecord, Runner
    from thinkedit.agent.settings import LoopSettings
    from thinkedit.agent.state import RunState
    from thinkedit.servers.cli.display import Display
    from thinkedit.tools.profiles import Profile

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the run commands."""
    edit = subparsers.add_parser("edit")
    edit.add_argument("image", help="The image to edit (JPEG, PNG, HEIC, WebP, AVIF, ...).")
    edit.add_argument("instruction", help="What to change, in words.")
    add_profile(edit)
    edit.add_argument("--ref", action="append", metavar="IMAGE",
                      help="A reference image (repeatable; image 2, 3, ... for editors that take several, "
                           "e.g. qwen-image-edit-plus: 'put the hat from image 2 on the cat').")
    add_max_rounds(edit)
    edit.add_argument("--seed", type=int_at_least(0), help="Seed of the edits (default 0).")
    edit.add_argument("--out", type=out_folder, help="Where to write the results (default: out/<run id>).")
    edit.add_argument("--select", choices=["best", "last"], help="Return the best-scoring round or the last.")
    edit.add_argument("--edit-from", choices=["source", "previous"],
                      help="Re-edit the source each round (default, as the paper) or chain edits.")
    edit.add_argument("--seed-policy", choices=["fixed", "increment"], help="Same seed every round, or +1 per round.")
    edit.add_argument("--candidates", type=int_at_least(1), metavar="K",
                      help="Best-of-K: edit K candidates per round in one batch and keep the best-judged.")
    edit.add_argument("--review", action="store_true", help="Ask before each refinement (approve, edit, stop).")
    edit.add_argument("--loop-mode", choices=["thinkedit", "paper"],
                      help="'paper': the published loop exactly (last image returned, never critiqued).")
    add_data_dir(edit)
    add_record(edit)
    edit.add_argument("--task-type", help="The edit's task type, kept in the recorded trajectory (e.g. add, style).")
    add_model_servers(edit)
    edit.add_argument("--budget", type=budget_arg, metavar="LIMIT",
                      help="Stop before a round that would exceed LIMIT: dollars ('0.50', '$0.50'; needs the "
                      "profile's [pricing]) or tokens ('20000 tokens', '20k tok'). Returns the best round so far.")
    add_storage_options(edit)
    edit.set_defaults(handler=cmd_edit)

    resume = subparsers.add_parser("resume")
    resume.add_argument("run_id")
    add_data_dir(resume)
    add_record(resume)
    resume.add_argument("--task-type", help="The edit's task type, kept in the recorded trajectory.")
    add_storage_options(resume)
    resume.set_defaults(handler=cmd_resume)

    runs = subparsers.add_parser("runs")
    add_data_dir(runs)
    add_storage_options(runs)
    runs.set_defaults(handler=cmd_runs)


def budget_arg(text: str) -> Any:
    """Parse ``--budget`` (errors become exit code 2)."""
    from thinkedit.tools.types import parse_budget

    try:
        return parse_budget(text)
    except BadInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fail(message: str, code: int) -> int:
    from thinkedit.servers.cli.errors import fail

    return fail(message, code)


def _settings(args: argparse.Namespace, profile: Profile, data_dir: Path) -> LoopSettings:
    from thinkedit.agent.settings import resolve_settings

    return resolve_settings(
        profile,
        max_rounds=args.max_rounds,
        seed=args.seed,
        selection=args.select,
        edit_from=args.edit_from,
        seed_policy=args.seed_policy,
        candidates=args.candidates,
        review=args.review or None,
        loop_mode=args.loop_mode,
        budget=args.budget,
        data_dir=str(data_dir),
        editor_url=args.editor,
        editor_model=args.editor_model,
        thinker_url=args.thinker,
        thinker_model=args.thinker_model,
    )


def cmd_edit(args: argparse.Namespace) -> int:
    """Start a run and see it through; say so within a moment of Enter, before the heavy imports."""
    import uuid

    from pydantic import ValidationError

    from thinkedit.agent.settings_check import check_settings
    from thinkedit.tools.errors import one_line
    from thinkedit.servers.cli.preflight import check_backends, check_inputs
    from thinkedit.servers.cli.display import progress_display

    data_dir = (args.data_dir or default_data_dir()).expanduser()
    from thinkedit.agent.settings import load_run_profile
    from thinkedit.tools.profiles import DEMO_NOTE, is_demo, missing_keys

    try:
        profile = load_run_profile(args.profile)  # read once: the settings and the machine check both use it
        settings = _settings(args, profile, data_dir)
        check_settings(settings)
        check_backends(settings, references=len(args.ref or ()))
        check_inputs(args.image, args.instruction)
    except (BadInputError, ValidationError) as exc:
        return _fail(one_line(exc), 2)
    from thinkedit.tools.thinkers.providers import require_packages

    try:
        require_packages(settings.thinker.backend, settings.thinker.model)
    except BadInputError as exc:
        return _fail(one_line(exc), 2)
    if missing := missing_keys(settings.editor, settings.thinker):
        names = ", ".join(f"${k}" for k in missing)
        return _fail(f"profile {args.profile} needs an API key in {names}, which is not set "
                     "(thinkedit profiles shows what each profile needs)", 2)
    if lacking := profile.missing_here(settings.editor, settings.thinker):
        return _fail(f"profile {args.profile} cannot run on this machine: {'; '.join(lacking)} "
                     "(thinkedit profiles shows what each profile needs)", 2)
    run_id = uuid.uuid4().hex[:12]
    print(f"run {run_id} · profile {args.profile} · data in {data_dir}", file=sys.stderr, flush=True)
    if is_demo(settings.editor, settings.thinker):
        print(DEMO_NOTE, file=sys.stderr, flush=True)
    prepared: list[str] = []
    try:
        with progress_display(settings.max_rounds) as display:
            from thinkedit.tools.registry import prime_in_process_runtime

            prime_in_process_runtime(settings.editor, settings.thinker)
            return asyncio.run(_edit(args, settings, data_dir, run_id, display, prepared))
    except BadInputError as exc:  # a bad storage URL or an unreachable database
        return _fail(one_line(exc), 2)
    except KeyboardInterrupt:
        hint = f"; finished rounds are kept, continue with: thinkedit resume {run_id}" if prepared else ""
        return _fail(f"interrupted{hint}", 130)


async def _edit(
    args: argparse.Namespace, settings: LoopSettings, data_dir: Path, run_id: str, display: Display, prepared: list[str]
) -> int:
    from thinkedit.agent.runs import Runner

    async with Runner.open(data_dir, **storage_urls(args)) as runner:
        record = runner.prepare(args.image, args.instruction, settings, run_id=run_id,
                                out_dir=args.out or Path("out") / run_id, references=args.ref or ())
        prepared.append(record.run_id)
        work = runner.start(record, on_event=display)
        return await _drive(runner, record, work, display, record_to=args.record, task_type=args.task_type)


def cmd_resume(args: argparse.Namespace) -> int:
    """Finish a run from its last checkpoint."""
    from thinkedit.agent.runs import RunRegistry
    from thinkedit.tools.registry import prime_in_process_runtime

    data_dir = (args.data_dir or default_data_dir()).expanduser()
    storage = storage_urls(args)
    try:
        settings = RunRegistry.for_data(data_dir, storage["artifacts"]).load(args.run_id).settings
    except BadInputError as exc:
        return _fail(str(exc), 2)
    print(f"resuming run {args.run_id}", file=sys.stderr, flush=True)  # before torch loads
    prime_in_process_runtime(settings.editor, settings.thinker)
    try:
        return asyncio.run(_resume(args.run_id, data_dir, args.record, args.task_type, storage))
    except KeyboardInterrupt:
        return _fail(f"interrupted; finished rounds are kept, continue with: thinkedit resume {args.run_id}", 130)


async def _resume(
    run_id: str,
    data_dir: Path,
    record_to: Path | None = None,
    task_type: str | None = None,
    storage: dict[str, str | None] | None = None,
) -> int:
    from thinkedit.agent.runs import Runner

    try:
        async with Runner.open(data_dir, **(storage or {})) as runner:
            return await _resume_in(runner, run_id, record_to, task_type)
    except BadInputError as exc:  # a bad checkpointer URL, an unreachable database, an unknown run
        return _fail(str(exc), 2)


async def _resume_in(runner: Runner, run_id: str, record_to: Path | None, task_type: str | None) -> int:
    from thinkedit.servers.cli.display import progress_display

    record = runner.registry.load(run_id)
    review = None
    if (pending := await runner.pending_review(run_id)) is not None:
        review = _ask_review(pending)
    state = await runner.state(run_id)
    finished = [r.verdict.overall for r in state.rounds if r.verdict] if state else []
    with progress_display(record.settings.max_rounds, scores=finished) as display:
        work = runner.resume(run_id, on_event=display, review=review)
        return await _drive(runner, record, work, display, record_to=record_to, task_type=task_type)


async def _drive(
    runner: Runner,
    record: RunRecord,
    work: Any,
    display: Display,
    *,
    record_to: Path | None = None,
    task_type: str | None = None,
) -> int:
    """Await the run, ask for reviews while it pauses, then write its files (and record it, if asked)."""
    from thinkedit.agent.recording import record_trajectory
    from thinkedit.agent.viewer import write_outputs
    from thinkedit.tools.errors import one_line

    try:
        state: RunState | None = await work
        while (pending := await runner.pending_review(record.run_id)) is not None:
            with display.paused():
                decision = _ask_review(pending)
            state = await runner.resume(record.run_id, on_event=display, review=decision)
    except BadInputError as exc:
        return _fail(one_line(exc), 2)
    except Exception as exc:  # noqa: BLE001 - any backend failure ends the run, resumable
        log.debug("run failed", exc_info=True)
        return _fail(
            f"run {record.run_id} failed: {type(exc).__name__}: {one_line(exc)}"
            f" — finished rounds are kept; continue with: thinkedit resume {record.run_id}",
            1,
        )
    finally:
        display.close()
    if state is None:
        return _fail(f"run {record.run_id} produced no state", 1)
    paths = write_outputs(state, runner.store, record.out_dir or Path("out") / record.run_id)
    print(f"final:      {paths['final']}")
    print(f"report:     {paths['report']}")
    print(f"trajectory: {paths['trajectory']}")
    from thinkedit.agent.progress import usage_text
    from thinkedit.agent.view import run_usage

    usage = run_usage(state)
    print(f"cost:       {usage['images_edited']} image(s) edited, {usage_text(usage)}"
          + ("" if usage["cost_usd"] is not None else " (no price for " + ", ".join(usage["unpriced"]) + ")"))
    if record_to is not None:
        print(f"recorded:   {record_trajectory(state, runner.store, record_to, task_type=task_type)}")
    return 0


def _ask_review(pending: dict[str, Any]) -> Any:
    """Ask the person at the terminal: approve, stop, or type a replacement instruction."""
    from thinkedit.servers.cli.display import printable

    print(
        f"\nround {pending['round']}: semantic {pending['semantic']} · quality {pending['quality']}\n"
        f"reasoning: {printable(pending['reasoning'])}\n"
        f"proposed instruction: {printable(pending['proposed_instruction'])}",
        file=sys.stderr,
    )
    if not sys.stdin.isatty():
        answer = sys.stdin.readline()
    else:
        answer = input("[a]pprove, [s]top, or type a new instruction: ")
    from thinkedit.agent.review import review_answer

    answer = answer.strip()
    if answer.lower() in {"", "a", "approve", "y", "yes"}:
        return review_answer("approve")
    if answer.lower() in {"s", "stop", "q", "quit"}:
        return review_answer("stop")
    return review_answer("edit", answer)


def _cost(usage: dict[str, Any] | None) -> str:
    """Say what a run cost in a column: estimated dollars, else tokens ('-' before it has a round)."""
    if not usage or not usage.get("edit_calls"):
        return "-"
    if usage.get("cost_usd") is not None:
        return f"${usage['cost_usd']:.4f} {usage['tokens']:,}t"
    return f"{usage['tokens']:,} tokens"


def cmd_runs(args: argparse.Namespace) -> int:
    """List runs, newest first, each from its view (the record alone: no checkpoint is opened)."""
    from thinkedit.agent.runs import RunRegistry
    from thinkedit.agent.view import run_view

    data_dir = (args.data_dir or default_data_dir()).expanduser()
    try:
        registry = RunRegistry.for_data(data_dir, storage_urls(args)["artifacts"])
    except BadInputError as exc:
        return _fail(str(exc), 2)
    records = registry.list()
    if not records:
        print(f"no runs in {registry.url}")
        return 0
    from thinkedit.servers.cli.display import printable

    wide = max(14, *(len(r.run_id) + 2 for r in records))  # an eval's ids are longer than a run's own
    print(f"{'RUN ID':<{wide}}{'STATUS':<17}{'CREATED':<27}{'COST':<20}INSTRUCTION")
    for view in (run_view(None, r.settings, r) for r in records):
        usage = view.usage.model_dump() if view.usage else None
        print(f"{view.run_id:<{wide}}{view.status:<17}{view.created_at:<27}{_cost(usage):<20}"
              f"{printable(view.instruction[:60])}")
    return 0
