"""Build SFT and RL files from recorded trajectories: read, apply the rules, copy images, write.

Output directory:
  sft.jsonl           LLaMA-Factory ShareGPT-style chat records
  rl.jsonl            RL records (prompt, images, reference answer, what the refinement led to)
  dataset_info.json   LLaMA-Factory's registration of sft.jsonl
  build-report.json   counts at every rule and the parameters used
  images/<trajectory>/source.png, round-N.png   the images the records name (paths relative to here)
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from thinkedit.apps.dataset.formats import DATASET_INFO, rl_record, sft_record
from thinkedit.apps.dataset.rules import balance, construct, score_bucket, split
from thinkedit.agent.recording import read_trajectories
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.safenames import confined_file, safe_component
from thinkedit.tools.thinkers.prompt import load_template

log = logging.getLogger(__name__)

REPORT_FILE = "build-report.json"


def _prepare_out(out: Path) -> None:
    """Create ``out``, or clear the images of an earlier build; never touch a foreign directory."""
    if out.exists() and any(out.iterdir()) and not (out / REPORT_FILE).is_file():
        raise BadInputError(f"{out} is not empty and holds no earlier build; choose an empty or new --out")
    shutil.rmtree(out / "images", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _counts(samples: list[dict[str, Any]], bucket_width: float) -> dict[str, dict[str, int]]:
    """Count samples per task type and per score bucket (for the report)."""
    table: dict[str, Counter[str]] = {}
    for s in samples:
        lo = score_bucket(float(s["overall"]), bucket_width) * bucket_width
        table.setdefault(str(s["task_type"]), Counter())[f"{lo:g}-{min(lo + bucket_width, 10):g}"] += 1
    return {task: dict(sorted(c.items())) for task, c in sorted(table.items())}


def build_dataset(
    source: str | Path,
    out_dir: str | Path,
    *,
    rl_fraction: float = 0.2,
    seed: int = 0,
    max_per_task: int | None = None,
    bucket_width: float = 2.0,
    prompt_file: str | Path | None = None,
) -> dict[str, Any]:
    """Turn the trajectories recorded under ``source`` into SFT/RL files in ``out_dir``; return the report."""
    if not 0.0 <= rl_fraction <= 1.0:
        raise BadInputError(f"--rl-fraction must be within [0, 1], got {rl_fraction}")
    if bucket_width <= 0:
        raise BadInputError("--bucket-width must be positive")
    src = Path(source).expanduser()
    if not src.is_dir():
        raise BadInputError(f"trajectory directory not found: {src}")
    folders: dict[str, Path] = {}
    trajectories = []
    for folder, data in read_trajectories(src):
        data = {**data, "id": str(data.get("id") or folder.name)}
        if data["id"] in folders:
            raise BadInputError(f"trajectory id {data['id']} appears twice under {src}")
        folders[data["id"]] = folder
        trajectories.append(data)
    template = load_template("editthinker", prompt_file)

    samples, dropped = construct(trajectories)
    balanced = balance(samples, max_per_task=max_per_task, bucket_width=bucket_width, seed=seed)
    sft, rl = split(balanced, rl_fraction=rl_fraction, seed=seed)

    out = Path(out_dir).expanduser()
    _prepare_out(out)

    def image(sample: dict[str, Any], name: str) -> str:
        # Both names come from trajectory.json: the folder from its id, the file from its rounds.
        relative = f"images/{safe_component(sample['trajectory'])}/{safe_component(name)}"
        target = out / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(confined_file(folders[sample["trajectory"]], name), target)
        return relative

    def pair(sample: dict[str, Any]) -> tuple[str, str]:
        return image(sample, sample["source_image"]), image(sample, sample["previous_image"])

    _write_jsonl(out / "sft.jsonl", [sft_record(s, template, pair(s)) for s in sft])
    _write_jsonl(
        out / "rl.jsonl",
        [rl_record(s, template, pair(s), image(s, s["next_image"]) if s["next_image"] else None) for s in rl],
    )
    (out / "dataset_info.json").write_text(json.dumps(DATASET_INFO, indent=2))
    report = {
        "source": str(src),
        "parameters": {
            "rl_fraction": rl_fraction,
            "seed": seed,
            "max_per_task": max_per_task,
            "bucket_width": bucket_width,
            "prompt_file": str(prompt_file) if prompt_file else None,
        },
        "trajectories": len(trajectories),
        "kept_trajectories": len(trajectories) - sum(dropped.values()),
        "dropped_trajectories": dropped,
        "unrolled_samples": len(samples),
        "balanced_samples": len(balanced),
        "sft_samples": len(sft),
        "rl_samples": len(rl),
        "unrolled_by_task_and_score": _counts(samples, bucket_width),
        "balanced_by_task_and_score": _counts(balanced, bucket_width),
    }
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2))
    log.info("built %d SFT and %d RL samples from %d trajectories", len(sft), len(rl), len(trajectories))
    return report
