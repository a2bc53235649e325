"""``thinkedit data build`` and ``thinkedit data synthetic-bench``: training data and a test benchmark."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from thinkedit.apps.evaluation.benchmarks import BENCHMARKS
from thinkedit.servers.options import int_at_least, out_folder
from thinkedit.tools.errors import BadInputError


def fraction(text: str) -> float:
    """Parse a number within [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {value}")
    return value


def positive_float(text: str) -> float:
    """Parse a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data build`` and ``data synthetic-bench``."""
    data = subparsers.add_parser("data")
    sub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    build = sub.add_parser(
        "build",
        help="Turn recorded trajectories into SFT and RL files (ThinkEdit-style rules).",
        description="Keep trajectories whose later rounds reach the first round's score, cut each at its best "
        "round, unroll one sample per step, balance by task type and score, split into SFT and RL sets.",
    )
    build.add_argument("--from", dest="source", required=True, type=Path, help="Directory of recorded trajectories.")
    build.add_argument("--out", required=True, type=out_folder, help="Where to write sft.jsonl, rl.jsonl and the images.")
    build.add_argument("--rl-fraction", type=fraction, default=0.2, help="Share of trajectories for RL (default 0.2).")
    build.add_argument("--seed", type=int_at_least(0), default=0, help="Seed of balancing and splitting (default 0).")
    build.add_argument("--max-per-task", type=int_at_least(1), help="Cap of samples per task type (default: the median count).")
    build.add_argument("--bucket-width", type=positive_float, default=2.0, help="Width of score buckets (default 2).")
    build.add_argument("--prompt-file", type=Path, help="Thinker prompt template for the user turn (default: packaged).")
    build.set_defaults(handler=cmd_build)

    synth = sub.add_parser("synthetic-bench", help="Write a tiny benchmark from the example photos (for offline tests).")
    synth.add_argument("--out", required=True, type=out_folder, help="Where to write it.")
    synth.add_argument("--layout", choices=BENCHMARKS, default="imgedit", help="Which benchmark's layout (default imgedit).")
    synth.add_argument("--items", type=int_at_least(1), help="How many items (default all six).")
    synth.add_argument("--images", type=Path, help="Folder with chelsea.png, coffee.png, astronaut.png (default examples/).")
    synth.set_defaults(handler=cmd_synthetic)


def cmd_build(args: argparse.Namespace) -> int:
    """Build the dataset and print its counts."""
    from thinkedit.apps.dataset.build import build_dataset

    try:
        report = build_dataset(args.source, args.out, rl_fraction=args.rl_fraction, seed=args.seed,
                               max_per_task=args.max_per_task, bucket_width=args.bucket_width, prompt_file=args.prompt_file)
    except BadInputError as exc:
        print(f"thinkedit: error: {exc}", file=sys.stderr)
        return 2
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(report["dropped_trajectories"].items())) or "none"
    print(f"trajectories: {report['trajectories']} found, {report['kept_trajectories']} kept (dropped: {dropped})")
    print(f"samples:      {report['unrolled_samples']} unrolled, {report['balanced_samples']} after balancing")
    print(f"sft:          {report['sft_samples']} → {args.out / 'sft.jsonl'}")
    print(f"rl:           {report['rl_samples']} → {args.out / 'rl.jsonl'}")
    print(f"report:       {args.out / 'build-report.json'}")
    return 0


def cmd_synthetic(args: argparse.Namespace) -> int:
    """Write the synthetic benchmark."""
    from thinkedit.apps.evaluation.synthetic import write_synthetic_benchmark

    try:
        out = write_synthetic_benchmark(args.out, args.layout, examples_dir=args.images, items=args.items)
    except BadInputError as exc:
        print(f"thinkedit: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote a synthetic {args.layout} benchmark to {out}")
    print(f"run it: thinkedit eval --bench {args.layout} --data {out} --profile tiny --judge tiny")
    return 0
