"""Run the GPU round's stages: build, warm up, drive the real loop, time best-of-K edits.

Each stage writes its figures into the report dict that ``bench/gpu_round.py`` saves and prints;
each takes the time budget, so what would overrun is skipped and said to be.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from tests.bench_support.gpu_report import Budget, Memory, save

INSTRUCTION = "put a red party hat on the cat and make it snow"


class InMemoryBackends:
    """Hand the graph the editor and thinker built here, whatever the settings name."""

    def __init__(self, editor: Any, thinker: Any) -> None:
        self._editor, self._thinker = editor, thinker

    def editor(self, config: Any) -> Any:
        """Return the one editor."""
        return self._editor

    def thinker(self, config: Any) -> Any:
        """Return the one thinker."""
        return self._thinker


def build(args: argparse.Namespace, report: dict[str, Any], memory: Memory, work: Path) -> dict[str, Any]:
    """Build editor and thinker on the device and record their weights and resident memory."""
    import torch

    from tests.bench_support.forced_reply import Replies
    from bench.gpu_models import build_kontext, build_thinker, footprints, thinker_tokenizer
    from thinkedit.tools.config import EditorConfig, ThinkerConfig
    from thinkedit.tools.editors.diffusers_engine import DiffusersEditor
    from thinkedit.tools.thinkers.transformers_vlm import TransformersThinker

    full = args.scale != "tiny"
    forced = args.decoding == "forced"
    # First, as it is quick: a --think-tokens too short for the format fails before any model is built.
    replies = Replies(thinker_tokenizer(work), args.think_tokens if forced else None)
    started = time.perf_counter()
    pipe = build_kontext(args.scale, args.device, torch.bfloat16, args.seed)
    report["memory"]["after_editor_build"] = memory.allocated()
    # working_area: edit at --size (the real entry would work at Kontext's ~1 MP resolutions).
    editor_config = EditorConfig(model="flux-kontext-dev" if full else "tiny-kontext", device=args.device,
                                 dtype="bfloat16", settings={"num_inference_steps": args.steps},
                                 working_area=args.size * args.size)
    editor = DiffusersEditor.from_pipeline(editor_config, pipe, args.device)
    editor_s = time.perf_counter() - started
    model, tokenizer, image_processor = build_thinker(args.scale, args.device, torch.bfloat16, work, args.seed)
    thinker_config = ThinkerConfig(
        model="appletea2333/EditThinker-8B" if full else "tiny-qwen3-vl", device=args.device, dtype="bfloat16",
        max_new_tokens=args.think_tokens + 8 if forced else args.think_tokens, temperature=0.7,
        constrained=not forced, max_image_side=args.size,
    )
    thinker = TransformersThinker.from_components(thinker_config, model, tokenizer, image_processor,
                                                  logits_processors=replies)
    report["memory"]["after_both_builds"] = memory.allocated()
    report["weights"] = footprints(pipe, model)
    report["warmup"]["build_editor_s"] = editor_s
    report["warmup"]["build_thinker_s"] = time.perf_counter() - started - editor_s
    return {"editor": editor, "thinker": thinker, "replies": replies}


def timed_edit(editor: Any, image: Any, seed: int, k: int = 1, steps: int | None = None) -> float:
    """Return the seconds one batched edit of ``k`` images takes."""
    from thinkedit.tools.types import EditRequest

    settings = {} if steps is None else {"num_inference_steps": steps}
    started = time.perf_counter()
    editor.edit_batch([EditRequest(image=image, instruction=INSTRUCTION, seed=seed, num_images=k, settings=settings)])
    return time.perf_counter() - started


def warm_up(args: argparse.Namespace, parts: dict[str, Any], image: Any, report: dict[str, Any]) -> dict[str, float]:
    """Run short edits and a short critique (kernels, allocator) and estimate the full ones from them."""
    from thinkedit.tools.types import JudgeRequest

    editor, thinker, replies = parts["editor"], parts["thinker"], parts["replies"]
    first = timed_edit(editor, image, args.seed, steps=1)  # first calls load kernels: not an estimate
    one, three = timed_edit(editor, image, args.seed, steps=1), timed_edit(editor, image, args.seed, steps=3)
    # Slope and intercept of two points; the floor keeps timing noise from estimating ~0 per step.
    per_step = max((three - one) / 2, three / 6)
    fixed = max(one - per_step, 0.0)
    if args.decoding == "forced":
        replies.set_length(replies.minimum_length() + 8)
    started = time.perf_counter()
    thinker.judge_sync(JudgeRequest(source=image, edited=image, original_instruction=INSTRUCTION,
                                    current_instruction=INSTRUCTION, seed=args.seed))
    critique_s = time.perf_counter() - started
    if args.decoding == "forced":
        replies.set_length(args.think_tokens)
    stats = replies.history[-1]
    per_token = (stats.decode_ms_per_token or 0.0) / 1000
    think = (stats.prefill_s or critique_s) + per_token * args.think_tokens
    report["warmup"].update(first_edit_1_step_s=first, edit_1_step_s=one, edit_3_steps_s=three, critique_s=critique_s,
                            critique_new_tokens=stats.new_tokens, estimated_edit_s=fixed + per_step * args.steps,
                            estimated_think_s=think)
    return {"edit": fixed + per_step * args.steps, "think": think}


async def drive_loop(
    parts: dict[str, Any], image: Any, rounds: int, seed: int, work: Path
) -> tuple[Any, list[tuple[str, int | None, float]], float]:
    """Run the real graph once: ``rounds`` rounds, no retries (a failure shows instead of costing time)."""
    from langgraph.types import RetryPolicy

    from thinkedit.agent.checkpoint import memory_checkpointer
    from thinkedit.agent.runs import Runner
    from thinkedit.agent.settings import LoopSettings

    editor, thinker = parts["editor"], parts["thinker"]
    once = RetryPolicy(max_attempts=1)
    backends = InMemoryBackends(editor, thinker)
    runner = Runner(work / "data", memory_checkpointer(), backends=backends, retry=(once, once))
    settings = LoopSettings(editor=editor.config, thinker=thinker.config, max_rounds=rounds, seed=seed,
                            data_dir=str(work / "data"))
    record = runner.prepare(image, INSTRUCTION, settings)
    marks: list[tuple[str, int | None, float]] = []
    started = time.perf_counter()
    state = await runner.start(record, lambda e: marks.append((e["event"], e.get("round"), time.perf_counter())))
    return state, marks, started


def measure_loop(args: argparse.Namespace, parts: dict[str, Any], image: Any, report: dict[str, Any],
                 budget: Budget, memory: Memory, estimate: dict[str, float], work: Path) -> None:
    """Run the loop for as many of ``--rounds`` as the budget allows and split each round's time.

    Rounds leave room for the best-of-K edits, except that two rounds run whenever they fit at all.
    """
    per_round = estimate["edit"] + estimate["think"] + 1.0
    best_of_k = sum(args.ks) * estimate["edit"]
    fit = int(max(budget.left() - best_of_k, 0) // per_round)
    rounds = min(args.rounds, max(fit, min(2, int(max(budget.left(), 0) // per_round))))
    if rounds < 1:
        budget.allows("loop", per_round)
        return
    if rounds < args.rounds:
        report["skipped"].append(
            f"loop: {rounds} of {args.rounds} rounds fit the time budget (~{per_round:.0f} s each)"
        )
    replies = parts["replies"]
    first_reply = len(replies.history)
    memory.reset_peak()
    state, marks, started = asyncio.run(drive_loop(parts, image, rounds, args.seed, work))
    ends = {round_: at for name, round_, at in marks if name == "round_started"}
    finished = next(at for name, _, at in marks if name == "run_finished")
    stats = replies.history[first_reply:]
    rows = []
    for i, r in enumerate(state.rounds):
        wall = ends.get(r.index + 1, finished) - ends[r.index]
        reply = stats[i] if i < len(stats) else None
        rows.append({
            "round": r.index, "edit_s": r.edit_seconds, "think_s": r.think_seconds,
            "overhead_s": wall - r.edit_seconds - r.think_seconds, "wall_s": wall,
            "semantic": r.verdict.semantic if r.verdict else None, "quality": r.verdict.quality if r.verdict else None,
            "prompt_tokens": reply and reply.prompt_tokens, "new_tokens": reply and reply.new_tokens,
            "prefill_s": reply and reply.prefill_s, "decode_ms_per_token": reply and reply.decode_ms_per_token,
        })
    report["loop"] = {"rounds": rows, "stop_reason": state.stop_reason, "wall_s": finished - started,
                      "before_first_round_s": ends[1] - started, "peak_gib": memory.peak()}
    report["memory"]["peak_loop_allocated"] = report["loop"]["peak_gib"]["allocated"]


def measure_throughput(args: argparse.Namespace, parts: dict[str, Any], image: Any, report: dict[str, Any],
                       budget: Budget, memory: Memory, estimate: dict[str, float], work: Path) -> None:
    """Time one batched edit of K candidates per K, stopping at the first out-of-memory."""
    from thinkedit.tools.errors import BackendError

    rounds = (report["loop"] or {}).get("rounds") or []
    think = sum(r["think_s"] for r in rounds) / len(rounds) if rounds else estimate["think"]
    per_image = rounds[-1]["edit_s"] if rounds else estimate["edit"]
    rows: list[dict[str, Any]] = []
    for k in args.ks:
        if not budget.allows(f"best-of-K edit K={k}", k * per_image):
            continue
        memory.reset_peak()
        try:
            seconds = timed_edit(parts["editor"], image, args.seed, k=k)
        except BackendError as exc:
            out_of_memory = "out of memory" in str(exc)
            rows.append({"k": k, "error": "out of memory" if out_of_memory else str(exc)})
            if out_of_memory:
                report["skipped"].extend(
                    f"best-of-K edit K={j}: after K={k} ran out of memory" for j in args.ks if j > k
                )
                break
            continue
        per_image = seconds / k
        rows.append({"k": k, "seconds": seconds, "images_per_s": k / seconds, "peak_gib": memory.peak()["allocated"],
                     "best_of_k_round_s": seconds + k * think})
        base = next((r for r in rows if r["k"] == 1 and "seconds" in r), None)
        if base:
            rows[-1]["ratio_vs_k1"] = rows[-1]["images_per_s"] / base["images_per_s"]
        report["throughput"] = rows
        save(report, args.json)  # a run cut short keeps every K measured so far
    report["throughput"] = rows
    peaks = [r["peak_gib"] for r in rows if r.get("peak_gib") is not None]
    report["memory"]["peak_best_of_k_allocated"] = max(peaks) if peaks else None
