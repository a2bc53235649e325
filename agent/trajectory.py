"""Export a finished run: final.png, one PNG per round, trajectory.json and report.html."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from thinkedit.agent.report import render_report
from thinkedit.agent.state import RunState
from thinkedit.tools.store import ArtifactStore


def trajectory(state: RunState, *, status: str | None = None) -> dict[str, Any]:
    """Return the run as a JSON-ready dict: the instruction, every round, the choice and why."""
    return {
        "run_id": state.run_id,
        "instruction": state.instruction,
        "status": status or state.status,
        "stop_reason": state.stop_reason,
        "best_round": state.best_round,
        "profile": state.settings.profile if state.settings else None,
        "editor": state.settings.editor.model if state.settings else None,
        "thinker": state.settings.thinker.model if state.settings else None,
        "source_image": state.source.model_dump(),
        "reference_images": [ref.model_dump() for ref in state.reference_images],
        "final_image": state.final_image.model_dump() if state.final_image else None,
        "notes": list(state.notes),
        "rounds": [
            {
                "index": r.index,
                "instruction": r.instruction,
                "seed": r.seed,
                "image": r.image.model_dump(),
                "semantic": r.verdict.semantic if r.verdict else None,
                "quality": r.verdict.quality if r.verdict else None,
                "overall": r.verdict.overall if r.verdict else None,
                "satisfied": r.verdict.satisfied if r.verdict else None,
                "reasoning": r.verdict.reasoning if r.verdict else None,
                "refined_instruction": r.verdict.refined_instruction if r.verdict else None,
                "raw_thinker_output": r.verdict.raw if r.verdict else None,
                "edit_seconds": round(r.edit_seconds, 4),
                "think_seconds": round(r.think_seconds, 4),
                "candidates": [
                    {
                        "seed": c.seed,
                        "image": c.image.model_dump(),
                        "semantic": c.verdict.semantic if c.verdict else None,
                        "quality": c.verdict.quality if c.verdict else None,
                        "overall": c.verdict.overall if c.verdict else None,
                    }
                    for c in r.candidates
                ],
            }
            for r in state.rounds
        ],
    }


def write_outputs(state: RunState, store: ArtifactStore, out_dir: str | Path) -> dict[str, Path]:
    """Write the run's files into ``out_dir`` and return their paths by name."""
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for r in state.rounds:
        target = out / f"round-{r.index}.png"
        shutil.copyfile(store.local_path(r.image), target)
        paths[f"round-{r.index}"] = target
    if state.final_image is not None:
        paths["final"] = out / "final.png"
        shutil.copyfile(store.local_path(state.final_image), paths["final"])
    data = trajectory(state)
    paths["trajectory"] = out / "trajectory.json"
    paths["trajectory"].write_text(json.dumps(data, indent=2))
    paths["report"] = out / "report.html"
    paths["report"].write_text(render_report(data, store), encoding="utf-8")
    return paths
