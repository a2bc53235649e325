"""``thinkedit eval``: run a benchmark with and without the loop, judge both, print and save the summary."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any, TYPE_CHECKING


from thinkedit.apps.evaluation.benchmarks import BENCHMARKS
from thinkedit.servers.cli.errors import fail as _fail
from thinkedit.servers.options import (
    add_data_dir, add_max_rounds, add_profile, add_record, int_at_least, out_folder, server_url,
)
from thinkedit.tools.config import ThinkerConfig, default_data_dir
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.profiles import load_profile

if TYPE_CHECKING:
    from thinkedit.agent.settings import LoopSettings
    from thinkedit.apps.evaluation.benchmarks import BenchLoad
    from thinkedit.apps.evaluation.runner import ItemOutcome

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval``."""
    p = subparsers.add_parser(
        "eval",
        description="Run every item of a local benchmark copy through the loop; judge its first round (the single "
        "edit) and its result (the loop); print and save a per-task-type table and plots. Rerunning the same "
        "command skips judged items and resumes interrupted ones.",
    )
    p.add_argument("--bench", required=True, choices=BENCHMARKS, help="Which benchmark layout --data holds.")
    p.add_argument("--data", required=True, type=Path, help="The benchmark's local copy (see the README).")
    add_profile(p)
    p.add_argument("--judge", required=True, help="Profile or TOML file whose [thinker] judges, with the judge prompt "
                   "(e.g. expert for GPT-4.1; tiny offline). THINKEDIT_THINKER_* variables do not apply to it.")
    p.add_argument("--judge-model", help="Override the judge's model name.")
    p.add_argument("--judge-url", metavar="URL", type=server_url,
                   help="Judge with the OpenAI-compatible server at URL (vLLM, thinkedit serve thinker, ...).")
    p.add_argument("--judge-prompt", type=Path, help="A judge template of your own (placeholders as the packaged one).")
    add_max_rounds(p)
    p.add_argument("--seed", type=int_at_least(0), default=0, help="Seed of the edits and the judge (default 0).")
    p.add_argument("--out", type=out_folder, help="Results, outputs, summary and plots (default: out/eval-<bench>).")
    p.add_argument("--concurrency", type=int_at_least(1), default=1, help="Items in flight at once (default 1).")
    p.add_argument("--limit", type=int_at_least(1), help="Only the first N items (after filters).")
    p.add_argument("--task-type", action="append", help="Only this task type (repeatable).")
    p.add_argument("--language", default="en", help="GEdit-Bench instruction language: en (default), cn, or all.")
    add_record(p)
    p.add_argument("--no-plot", action="store_true", help="Skip the PNG plots.")
    add_data_dir(p)
    p.set_defaults(handler=cmd_eval)


def _judge_thinker(args: argparse.Namespace) -> ThinkerConfig:
    """Take the judge profile's thinker (no env overrides), pointed at ``--judge-url`` and ``--judge-model``.

    A URL switches the judge to its HTTP backend, as ``--thinker`` does for a run's thinker.
    """
    from thinkedit.agent.settings import point_at_servers

    judge = load_profile(args.judge, env={})
    return point_at_servers(judge.editor, judge.thinker, thinker_url=args.judge_url, thinker_model=args.judge_model)[1]


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a benchmark; exit 1 if some items failed (rerun to retry them)."""
    from pydantic import ValidationError

    from thinkedit.agent.settings import resolve_settings
    from thinkedit.agent.settings_check import check_settings
    from thinkedit.apps.evaluation.readers import load_benchmark
    from thinkedit.apps.evaluation.judge import judge_prompt_text, judge_thinker_config, write_judge_prompt
    from thinkedit.apps.evaluation.plots import plot_summary
    from thinkedit.apps.evaluation.results import read_results, results_path
    from thinkedit.apps.evaluation.runner import claim_out_dir
    from thinkedit.apps.evaluation.summary import summarize, to_csv, to_markdown
    from thinkedit.tools.errors import one_line
    from thinkedit.tools.registry import prime_in_process_runtime

    data_dir = (args.data_dir or default_data_dir()).expanduser()
    out = (args.out or Path("out") / f"eval-{args.bench}").expanduser()
    try:
        settings = resolve_settings(args.profile, max_rounds=args.max_rounds, seed=args.seed,
                                    data_dir=str(data_dir), review=False)
        check_settings(settings)
        judge_thinker = _judge_thinker(args)
        prompt = judge_prompt_text(args.bench, judge_thinker.protocol, args.judge_prompt)
        languages = None if args.bench != "gedit" or args.language == "all" else {args.language}
        loaded = load_benchmark(args.bench, args.data, cache_dir=out / "sources", languages=languages,
                                task_types=set(args.task_type) if args.task_type else None, limit=args.limit)
        if not loaded.items:
            return _fail(f"no {args.bench} items to run under {args.data} after filtering", 2)
        claim_out_dir(out, args.bench, _fingerprint(args, settings, judge_thinker, prompt, loaded))
        prompt_file = write_judge_prompt(out, args.bench, judge_thinker.protocol, args.judge_prompt)
        judge_cfg = judge_thinker_config(judge_thinker, prompt_file)
    except (BadInputError, ValidationError) as exc:
        return _fail(one_line(exc), 2)
    prime_in_process_runtime(settings.editor, settings.thinker, judge_cfg)
    try:
        outcomes = asyncio.run(_run(args, settings, judge_cfg, loaded, out, data_dir))
    except KeyboardInterrupt:
        return _fail("interrupted; rerun the same command to continue (judged items are kept)", 130)
    except BadInputError as exc:
        return _fail(str(exc), 2)
    keys = {i.key for i in loaded.items}
    single = [r for r in read_results(results_path(out, args.bench, "single")) if r["key"] in keys]
    loop = [r for r in read_results(results_path(out, args.bench, "loop")) if r["key"] in keys]
    failed = [o for o in outcomes if o.status == "failed"]
    rows = summarize(single, loop, selected=[(i.key, i.task_type) for i in loaded.items],
                     failed=[o.item.key for o in failed], not_runnable=len(loaded.skipped))
    title = f"{args.bench}: single edit vs Think-while-Edit ({args.profile}, judge {judge_cfg.model})"
    table = to_markdown(rows, title)
    (out / f"summary-{args.bench}.md").write_text(table, encoding="utf-8")
    (out / f"summary-{args.bench}.csv").write_text(to_csv(rows), encoding="utf-8")
    print(table)
    plots = [] if args.no_plot else plot_summary(rows, out, args.bench)
    print(f"summary: {out / f'summary-{args.bench}.md'} · {out / f'summary-{args.bench}.csv'}")
    if plots:
        print(f"plots:   {plots[0]} (+{len(plots) - 1} per task type in {out / 'plots'})")
    if failed:
        return _fail(f"{len(failed)} item(s) failed (first: {failed[0].item.key}: {failed[0].error}); "
                     "rerun the same command to retry them", 1)
    return 0


class _Lines:
    """Stand in for a tqdm bar when tqdm is not installed: print the item lines only."""

    def write(self, line: str, file: Any = None) -> None:
        print(line, file=sys.stderr, flush=True)

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, name: str) -> Any:
    """Return a tqdm bar on stderr (drawn even though the CLI sets TQDM_DISABLE for libraries)."""
    try:
        from tqdm import tqdm
    except ImportError:
        log.warning("tqdm is not installed (pip install 'thinkedit[eval]'); no progress bar")
        return _Lines()
    return tqdm(total=total, desc=name, unit="item", file=sys.stderr, disable=False, dynamic_ncols=True)


def _fingerprint(args: argparse.Namespace, settings: LoopSettings, judge: ThinkerConfig, prompt: str,
                 loaded: BenchLoad) -> dict[str, Any]:
    """Return what must not change between runs into the same output directory."""
    loop = settings.model_dump(mode="json", exclude={"data_dir", "profile", "review"})
    return {"bench": args.bench, "data": str(loaded.source.resolve()), "loop": loop,
            "judge": judge.model_dump(mode="json", exclude={"prompt_file"}), "judge_prompt": prompt}


async def _run(args: argparse.Namespace, settings: LoopSettings, judge_cfg: ThinkerConfig, loaded: BenchLoad,
               out: Path, data_dir: Path) -> list[ItemOutcome]:
    from thinkedit.agent.runs import Runner
    from thinkedit.apps.evaluation.judge import Judge
    from thinkedit.apps.evaluation.runner import EvalPlan, evaluate
    from thinkedit.tools.registry import BackendCache

    cache = BackendCache(data_dir=data_dir)
    judge = Judge(cache.thinker(judge_cfg), name=judge_cfg.model, seed=args.seed)
    for key, reason in loaded.skipped:
        log.info("skipping %s: %s", key, reason)
    skipped = ""
    if loaded.skipped:
        key, reason = loaded.skipped[0]
        skipped = f" ({len(loaded.skipped)} not runnable, e.g. {key}: {reason})"
    print(f"{args.bench}: {len(loaded.items)} items from {loaded.source}{skipped} · loop {args.profile} · "
          f"judge {judge_cfg.model} · out {out}", file=sys.stderr, flush=True)
    bar = _progress_bar(len(loaded.items), args.bench)

    def on_outcome(outcome: ItemOutcome) -> None:
        item = outcome.item
        if outcome.status == "done" and outcome.single and outcome.loop:
            bar.write(f"done {item.key} · {item.task_type} · single {outcome.single['overall']:.2f} → "
                      f"loop {outcome.loop['overall']:.2f} ({outcome.loop['rounds']} rounds)", file=sys.stderr)
        elif outcome.status == "skipped":
            bar.write(f"skip {item.key} · already judged", file=sys.stderr)
        else:
            bar.write(f"fail {item.key} · {outcome.error}", file=sys.stderr)
        bar.update(1)

    plan = EvalPlan(bench=args.bench, out_dir=out, settings=settings, judge=judge,
                    concurrency=args.concurrency, record_dir=args.record)
    try:
        async with Runner.open(data_dir, backends=cache) as runner:
            return await evaluate(loaded.items, plan, runner, on_outcome=on_outcome)
    finally:
        bar.close()
