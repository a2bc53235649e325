"""Export a finished run: final.png, one PNG per round, trajectory.json and report.html."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from thinkedit.agent.report import render_report
from thinkedit.agent.state import RunState
from thinkedit.tools.profiles import DEMO_NOTE, is_demo
from thinkedit.tools.store import ArtifactStore
from thinkedit.tools.types import total_usage

#: What the trajectory says for a round whose editor takes no seed.
NO_SEED_NOTE = "the editor's API takes no seed: this round is not reproducible by seed"


def run_usage(state: RunState) -> dict[str, Any]:
    """Return the run's total usage (calls, images, tokens, seconds, estimated price)."""
    total = total_usage([r.usage for r in state.rounds])
    return {**total.model_dump(), "tokens": total.tokens}


def trajectory(state: RunState, *, status: str | None = None) -> dict[str, Any]:
    """Return the run as a JSON-ready dict: the instruction, every round, the choice and why."""
    settings = state.settings
    seeded = all(r.seed_applied for r in state.rounds)
    demo = settings is not None and is_demo(settings.editor, settings.thinker)
    return {
        "run_id": state.run_id,
        "instruction": state.instruction,
        "status": status or state.status,
        "stop_reason": state.stop_reason,
        "best_round": state.best_round,
        "profile": state.settings.profile if state.settings else None,
        "editor": state.settings.editor.model if state.settings else None,
        "thinker": state.settings.thinker.model if state.settings else None,
        "seed_policy": {
            "policy": settings.seed_policy if settings else None,
            "applied": seeded,
            "note": None if seeded else NO_SEED_NOTE,
        },
        "budget": settings.budget.model_dump() if settings and settings.budget else None,
        "usage": run_usage(state),
        "source_image": state.source.model_dump(),
        "reference_images": [ref.model_dump() for ref in state.reference_images],
        "final_image": state.final_image.model_dump() if state.final_image else None,
        "demo_note": DEMO_NOTE if demo else None,
        "notes": [DEMO_NOTE, *state.notes] if demo else list(state.notes),
        "rounds": [
            {
                "index": r.index,
                "instruction": r.instruction,
                "seed": r.seed if r.seed_applied else None,
                "seed_note": None if r.seed_applied else NO_SEED_NOTE,
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
                "usage": {**r.usage.model_dump(), "tokens": r.usage.tokens},
                "candidates": [
                    {
                        "seed": c.seed if r.seed_applied else None,
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
    paths["report"].write_text(render_report(data, store, state.settings), encoding="utf-8")
    return paths
