"""Run state: what the graph checkpoints (image references and verdicts, never pixels)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.types import ImageRef, Verdict

StopReason = Literal[
    "threshold_met",
    "thinker_satisfied",
    "instruction_unchanged",
    "max_rounds",
    "reviewer_stopped",
    "cancelled",
    "error",
]
RunStatus = Literal["running", "awaiting_review", "done", "cancelled", "error"]


class Round(BaseModel):
    """Record one edit and its critique."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=1, description="1-based round number.")
    instruction: str = Field(description="The instruction the editor was given.")
    seed: int = Field(description="The editor's seed.")
    image: ImageRef = Field(description="The edited image.")
    verdict: Verdict | None = Field(default=None, description="The thinker's critique of this round.")
    edit_seconds: float = Field(default=0.0, description="Wall time of the edit.")
    think_seconds: float = Field(default=0.0, description="Wall time of the critique.")


def merge_rounds(existing: list[Round] | None, update: list[Round] | None) -> list[Round]:
    """Merge rounds by index: an update replaces the round with the same index, or appends."""
    merged = {r.index: r for r in existing or []}
    for item in update or []:
        round_ = Round.model_validate(item) if isinstance(item, dict) else item
        merged[round_.index] = round_
    return [merged[i] for i in sorted(merged)]


class RunState(BaseModel):
    """Hold one Think-while-Edit run: the source, the instructions and every round."""

    run_id: str = Field(default="", description="The run's id (also its checkpoint thread id).")
    source: ImageRef = Field(description="The image being edited.")
    instruction: str = Field(min_length=1, description="The user's original instruction.")
    current_instruction: str = Field(default="", description="The instruction the next edit uses.")
    rounds: Annotated[list[Round], merge_rounds] = Field(default_factory=list)
    status: RunStatus = "running"
    stop_reason: StopReason | None = None
    best_round: int | None = Field(default=None, description="Index of the chosen round.")
    final_image: ImageRef | None = Field(default=None, description="The chosen round's image.")

    def last_round(self) -> Round | None:
        """Return the most recent round, if any."""
        return self.rounds[-1] if self.rounds else None
