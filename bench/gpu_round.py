"""Measure the real loop at full size on one GPU, so latency and memory figures exist before the weights do.

Builds FLUX.1 Kontext [dev] (12B transformer, T5-XXL, CLIP-L, 16-channel VAE) and a thinker of
Qwen3-VL-8B's size from configs with random weights, straight onto the GPU in bfloat16
(``bench/gpu_models.py``; nothing is downloaded, no float32 copy passes through host memory),
wraps them in the real ``DiffusersEditor`` and ``TransformersThinker`` and drives the real graph
(``thinkedit.agent.runs.Runner``, in-memory checkpointer, no retries) at 1024x1024, 28 steps, guidance 2.5.
It prints a table and writes the same figures as JSON (``--json``, default $OUT/gpu_round.json):

- per round: edit, think, overhead (round wall time - edit - think: PNG store, checkpoints, graph)
  and the thinker's prefill seconds and decode ms/token;
- each model's weights, memory resident with both loaded, and the peaks (max_memory_allocated)
  of the loop and of the best-of-K edits;
- best-of-K: K = 1, 2, 4 candidates in one batched edit (``num_images``, what
  ``LoopSettings.candidates`` asks for), images/s and the ratio to K = 1; an out-of-memory is
  reported as that K's result and larger K are skipped;
- the GPU, torch/CUDA, diffusers and transformers versions.

Random weights write no verdict and never stop on their own. With ``--decoding forced`` (the
default) ``bench/forced_reply.py`` makes every critique exactly ``--think-tokens`` tokens (400) of
well-formed ``<think>…</think><score>…</score><answer>…</answer>``: the fixed parts are forced,
the free text and the scores (0-7, under the 8/8 threshold, so a run takes exactly ``--rounds``
rounds) are still sampled from the model at temperature 0.7. Every token is one full forward
pass, so think time is what an 8B model takes to write a critique that long (EditThinker-8B
itself runs unconstrained). ``--decoding grammar`` uses the thinker's own xgrammar constraint
(``constrained = true``, free-text caps sized from max_new_tokens so output always completes);
the reply length, and so the round count, then vary.

On the device (one GPU, no network), from the repository root:

    python bench/gpu_round.py --json $OUT/gpu_round.json

It imports torch (>= 2.5), diffusers (>= 0.42), transformers (>= 5.24), tokenizers, safetensors,
huggingface_hub, jinja2, pillow, numpy, pydantic, langgraph (>= 1.0), langgraph-checkpoint and
langchain-core, with their own dependencies, on Python >= 3.11; xgrammar only for ``--decoding
grammar``. Carry wheels of what the device lacks (``pip download -d wheels ...`` here,
``pip install --no-index --find-links wheels ...`` there): the script names anything missing or
too old and stops before touching the GPU. Without CUDA it stops with a clear message. ``--dry-run`` builds the full models on the meta device and prints their sizes;
``--scale shallow`` keeps the full widths with one to three blocks per stack (every full-size
shape, ~6 GiB, a couple of minutes on a CPU); ``--scale tiny`` runs every code path on a CPU in
about ten seconds.

Planned, not measured: ~5 min on an H100 (build ~30 s, an edit ~20 s, a critique ~10-15 s,
3 rounds ~1.7 min, K=1+2+4 ~7 edits ~2.5 min). ``--time-budget`` (430 s, counted from the
start) skips any measurement whose estimate would overrun, and says so. Weights are 47.8 GiB;
the peak should stay near 50-60 GiB. Figures: to be measured.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bench_support.gpu_report import Budget, Memory, default_json_path, environment, missing_modules  # noqa: E402
from tests.bench_support.gpu_report import new_report, render, save  # noqa: E402

log = logging.getLogger("gpu_round")

DEFAULTS = {
    "full": {"steps": 28, "rounds": 3, "think_tokens": 400, "size": 1024, "time_budget": 430.0, "device": "cuda"},
    "shallow": {"steps": 2, "rounds": 2, "think_tokens": 96, "size": 256, "time_budget": 600.0, "device": None},
    "tiny": {"steps": 2, "rounds": 2, "think_tokens": 96, "size": 64, "time_budget": 120.0, "device": "cpu"},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Read the options; unset ones take the scale's defaults."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(DEFAULTS), default="full")
    parser.add_argument("--steps", type=int, help="denoising steps per edit (full: 28, the paper's)")
    parser.add_argument("--rounds", type=int, help="loop rounds (max_rounds; full: 3)")
    parser.add_argument("--k", default="1,2,4", help="best-of-K batch sizes to time, comma-separated")
    parser.add_argument("--think-tokens", type=int, help="new tokens per critique (full: 400)")
    parser.add_argument("--size", type=int, help="square image side in pixels (full: 1024)")
    parser.add_argument("--decoding", choices=["forced", "grammar"], default="forced")
    parser.add_argument("--time-budget", type=float, help="seconds; measurements that would overrun are skipped")
    parser.add_argument("--device", help="torch device (full: cuda, tiny: cpu, shallow: cuda if there is one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="where to write the figures (default $OUT/gpu_round.json)")
    parser.add_argument("--dry-run", action="store_true", help="build the full models on the meta device, print sizes")
    parser.add_argument("--simulate-failures", action="store_true",
                        help="fail the loop stage and run out of memory at K=4, to see how a broken run is reported")
    args = parser.parse_args(argv)
    for key, value in DEFAULTS[args.scale].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    try:
        args.ks = sorted({int(k) for k in str(args.k).split(",") if k.strip()})
    except ValueError:
        parser.error(f"--k takes whole numbers separated by commas, got {args.k!r}")
    if not args.ks or min(args.ks) < 1 or max(args.ks) > 8 or args.steps < 1 or args.rounds < 1:
        parser.error("--k must be 1-8 (LoopSettings.candidates), --steps and --rounds positive")
    if args.size < 16 or args.size % 16:
        parser.error("--size must be a positive multiple of 16 (the editors' working sizes)")
    args.json = args.json or default_json_path()
    return args


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def source_image(size: int) -> Any:
    """Return the example cat photo, centre-cropped to a square and resized to ``size``."""
    from PIL import Image

    with Image.open(ROOT / "examples" / "chelsea.png") as im:
        im = im.convert("RGB")
    side = min(im.size)
    left, top = (im.width - side) // 2, (im.height - side) // 2
    return im.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)


def dry_run(args: argparse.Namespace) -> int:
    """Build the models on the meta device (no memory, no GPU) and print their sizes."""
    import torch

    from bench.gpu_models import build_kontext, build_thinker, footprints

    with tempfile.TemporaryDirectory(prefix="gpu-round-") as tmp:
        pipe = build_kontext(args.scale, "meta", torch.bfloat16)
        model, _, _ = build_thinker(args.scale, "meta", torch.bfloat16, tmp)
    for name, item in footprints(pipe, model).items():
        print(f"{name:>18}: {item['params_b']:7.3f} B parameters, {item['gib']:7.2f} GiB in bfloat16")
    return 0


def run(args: argparse.Namespace, report: dict[str, Any], budget: Budget | None = None) -> None:
    """Run the stages in order, saving after each; a failed stage is recorded and the next one runs."""
    from bench import gpu_stages

    if args.simulate_failures:
        simulate_failures(gpu_stages)
    budget = budget or Budget(args.time_budget, report["skipped"])
    memory = Memory(args.device)
    image = source_image(args.size)
    with tempfile.TemporaryDirectory(prefix="gpu-round-") as tmp:
        work = Path(tmp)
        try:
            parts = gpu_stages.build(args, report, memory, work)
            save(report, args.json)
            estimate = gpu_stages.warm_up(args, parts, image, report)
        except Exception as exc:  # nothing to measure without the models: record why and stop
            log.exception("building or warming up failed")
            report["errors"].append(f"build/warm-up: {type(exc).__name__}: {exc}")
            return
        save(report, args.json)
        for name, stage in (("loop", gpu_stages.measure_loop), ("best-of-K", gpu_stages.measure_throughput)):
            try:
                stage(args, parts, image, report, budget, memory, estimate, work)
            except Exception as exc:  # e.g. out of memory mid-run: keep the other stage's figures
                log.exception("%s failed", name)
                report["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
            save(report, args.json)


def simulate_failures(stages: Any) -> None:
    """Make the loop stage fail and a best-of-K edit at K=4 run out of memory, as a broken GPU run would."""
    from thinkedit.tools.errors import BackendError

    def no_loop(*args: object) -> None:
        raise RuntimeError("CUDA out of memory (simulated)")

    real_edit = stages.timed_edit

    def edit(editor: Any, image: Any, seed: int, k: int = 1, steps: int | None = None) -> float:
        if k == 4:
            raise BackendError("the editor ran out of memory on cuda editing 4 image(s) (simulated)")
        return real_edit(editor, image, seed, k, steps)

    stages.measure_loop, stages.timed_edit = no_loop, edit


def main(argv: list[str] | None = None) -> int:
    """Check what the run needs, run it, print the table and write the JSON; 0 when all went well."""
    args = parse_args(argv)
    settings = {
        "editor": f"FLUX.1 Kontext [dev], {args.scale}, random weights",
        "thinker": f"Qwen3-VL-8B, {args.scale}, random weights",
        **{key: getattr(args, key) for key in ("steps", "rounds", "ks", "think_tokens", "size", "decoding",
                                               "time_budget", "device", "seed")},
        "guidance_scale": 2.5, "dtype": "bfloat16", "temperature": 0.7,
    }
    report = new_report(args.scale, settings)
    budget = Budget(args.time_budget, report["skipped"])  # from the start: imports count too
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    missing = missing_modules()
    if args.decoding == "grammar" and find_spec("xgrammar") is None:
        missing.append("xgrammar")
    if missing:
        print(f"gpu_round: missing or too old: {', '.join(missing)}. Carry their wheels and install them with "
              "pip install --no-index --find-links WHEELS_DIR <names>.", file=sys.stderr)
        return 2
    import torch

    if args.device is None:  # shallow: the GPU when there is one
        args.device = report["settings"]["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    if args.dry_run:
        return dry_run(args)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_round: no CUDA device here; the full-size run needs one GPU with ~64 GiB free. "
              "Use --scale tiny for the CPU smoke run, or --dry-run for the model sizes.", file=sys.stderr)
        return 2
    report["environment"] = environment(args.device)
    seed_everything(args.seed)
    run(args, report, budget)
    peaks = [v for k, v in report["memory"].items() if k.startswith("peak") and v is not None]
    report["memory"]["peak_allocated"] = max(peaks) if peaks else None
    report["status"] = "done" if not report["errors"] else "failed"
    report["wall_seconds"] = budget.elapsed()
    save(report, args.json)
    print(render(report))
    print(f"figures written to {args.json}")
    return 0 if report["status"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
