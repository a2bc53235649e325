"""Build SFT and RL files from recorded trajectories: read, apply the rules, copy images, write.

Output directory:
  sft.jsonl           LLaMA-Factory ShareGPT-style chat records
  rl.jsonl            RL records (prompt, images, reference answer, what the refinement led to)
  dataset_info.json   LLaMA-Factory's registration of sft.jsonl
  build-report.json   counts at every rule (files that could not be read among the dropped), the parameters used
  images/<trajectory>/source.png, round-N.png   the images the records name (paths relative to here)

Every input is checked before anything is written; the build is made in a hidden sibling folder and swapped
in only when whole, so a failed build leaves an earlier one in ``out`` as it was. Other files in ``out`` stay.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
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


#: What a build writes into its folder; anything else there is the user's and stays.
BUILD_ENTRIES = frozenset({"sft.jsonl", "rl.jsonl", "dataset_info.json", REPORT_FILE, "images"})


def _check_out(out: Path) -> None:
    """Refuse an ``out`` that is neither new, empty nor an earlier build: never touch a foreign directory."""
    if out.exists() and any(out.iterdir()) and not (out / REPORT_FILE).is_file():
        raise BadInputError(f"{out} is not empty and holds no earlier build; choose an empty or new --out")


def _new_build_folder(out: Path) -> Path:
    """Make the hidden sibling of ``out`` the build is written into (a sibling, so it can be renamed into place)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        built = out.parent / f".{out.name}-building-{uuid.uuid4().hex[:12]}"
        built.mkdir()  # not mkdtemp, which makes it private: once swapped in, ``out`` has the usual permissions
        return built
    except OSError as exc:
        raise BadInputError(f"cannot write beside {out} (the build is made there, then renamed): {exc}") from exc


def _swap_in(built: Path, out: Path) -> None:
    """Put the finished build at ``out``: the earlier build goes, entries that are not the build's own move along."""
    if not out.exists():
        os.rename(built, out)
        return
    carried = [p.name for p in out.iterdir() if p.name not in BUILD_ENTRIES]
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}-replaced-", dir=out.parent))
    os.replace(out, aside)  # the earlier build leaves whole, under a hidden name
    try:
        os.rename(built, out)
    except BaseException:
        os.replace(aside, out)  # put the earlier one back
        raise
    for name in carried:  # should one fail, the error stops us before the aside folder holding it is removed
        os.rename(aside / name, out / name)
    shutil.rmtree(aside, ignore_errors=True)


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
    skipped: list[dict[str, str]] = []  # files read_trajectories could not use: counted as dropped, listed

    def note_skip(path: Path, reason: str, problem: str) -> None:
        skipped.append({"file": str(path.relative_to(src)), "reason": reason, "problem": problem})

    for folder, data in read_trajectories(src, on_skip=note_skip):
        data = {**data, "id": str(data.get("id") or folder.name)}
        if data["id"] in folders:
            raise BadInputError(f"trajectory id {data['id']} appears twice under {src}")
        folders[data["id"]] = folder
        trajectories.append(data)
    template = load_template("editthinker", prompt_file)

    samples, dropped = construct(trajectories)
    for reason, count in sorted(Counter(s["reason"] for s in skipped).items()):
        dropped[reason] = dropped.get(reason, 0) + count
    balanced = balance(samples, max_per_task=max_per_task, bucket_width=bucket_width, seed=seed)
    sft, rl = split(balanced, rl_fraction=rl_fraction, seed=seed)

    out = Path(out_dir).expanduser().resolve()  # a link to a folder: the build goes where it leads
    _check_out(out)
    copies: dict[str, Path] = {}  # relative target -> checked source, every one before anything is written

    def image(sample: dict[str, Any], name: str) -> str:
        # Both names come from trajectory.json: the folder from its id, the file from its rounds.
        relative = f"images/{safe_component(sample['trajectory'])}/{safe_component(name)}"
        if relative not in copies:
            copies[relative] = confined_file(folders[sample["trajectory"]], name)
        return relative

    def pair(sample: dict[str, Any]) -> tuple[str, str]:
        return image(sample, sample["source_image"]), image(sample, sample["previous_image"])

    sft_rows = [sft_record(s, template, pair(s)) for s in sft]
    rl_rows = [rl_record(s, template, pair(s), image(s, s["next_image"]) if s["next_image"] else None) for s in rl]
    report = {
        "source": str(src),
        "parameters": {
            "rl_fraction": rl_fraction,
            "seed": seed,
            "max_per_task": max_per_task,
            "bucket_width": bucket_width,
            "prompt_file": str(prompt_file) if prompt_file else None,
        },
        "trajectories": len(trajectories) + len(skipped),
        "kept_trajectories": len(trajectories) + len(skipped) - sum(dropped.values()),
        "dropped_trajectories": dict(sorted(dropped.items())),
        "skipped_files": skipped,
        "unrolled_samples": len(samples),
        "balanced_samples": len(balanced),
        "sft_samples": len(sft),
        "rl_samples": len(rl),
        "unrolled_by_task_and_score": _counts(samples, bucket_width),
        "balanced_by_task_and_score": _counts(balanced, bucket_width),
    }
    built = _new_build_folder(out)
    try:
        for relative, origin in copies.items():
            (built / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(origin, built / relative)
        _write_jsonl(built / "sft.jsonl", sft_rows)
        _write_jsonl(built / "rl.jsonl", rl_rows)
        (built / "dataset_info.json").write_text(json.dumps(DATASET_INFO, indent=2))
        (built / REPORT_FILE).write_text(json.dumps(report, indent=2))
        _swap_in(built, out)
    finally:
        shutil.rmtree(built, ignore_errors=True)  # gone already when it was swapped in
    log.info("built %d SFT and %d RL samples from %d trajectories", len(sft), len(rl), len(trajectories))
    return report
