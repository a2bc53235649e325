"""Run state: what the graph checkpoints (image references and verdicts, never pixels)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from thinkedit.agent.settings import LoopSettings, SettingsInput
from thinkedit.tools.types import MAX_REFERENCES, ImageRef, Usage, Verdict, total_usage

StopReason = Literal[
    "threshold_met",
    "thinker_satisfied",
    "instruction_unchanged",
    "max_rounds",
    "reviewer_stopped",
    "budget",
    "cancelled",
    "error",
]
RunStatus = Literal["running", "awaiting_review", "done", "cancelled", "error"]
#: The statuses of a run that is not over: it may still edit, or waits for a reviewer.
ACTIVE: tuple[RunStatus, ...] = ("running", "awaiting_review")


class Candidate(BaseModel):
    """Record one of a round's best-of-K edits and its critique."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(description="The editor's seed for this candidate.")
    image: ImageRef = Field(description="The candidate image.")
    verdict: Verdict | None = Field(default=None, description="The thinker's critique of this candidate.")


class Round(BaseModel):
    """Record one edit and its critique (with best-of-K: the best candidate's)."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=1, description="1-based round number.")
    instruction: str = Field(description="The instruction the editor was given.")
    seed: int = Field(description="The editor's seed.")
    image: ImageRef = Field(description="The edited image.")
    verdict: Verdict | None = Field(default=None, description="The thinker's critique of this round.")
    edit_seconds: float = Field(default=0.0, description="Wall time of the edit.")
    think_seconds: float = Field(default=0.0, description="Wall time of the critique.")
    candidates: list[Candidate] = Field(
        default_factory=list,
        description="With best-of-K, every candidate; image, seed and verdict are then the best one's.",
    )
    seed_applied: bool = Field(default=True, description="False when the editor's API takes no seed.")
    usage: Usage = Field(default_factory=Usage, description="Calls, images, tokens, seconds and price of the round.")


def plain(model: BaseModel) -> dict[str, Any]:
    """Return a model as JSON-native data: what nodes write to channels, so any LangGraph server can checkpoint it."""
    return model.model_dump(mode="json")


def merge_rounds(
    existing: list[Round | dict[str, Any]] | None, update: list[Round | dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """Merge rounds by index: an update replaces the round with the same index, or appends.

    Both sides may hold dicts (what nodes write, and what any server's checkpoints decode to) or
    ``Round`` instances (checkpoints saved before rounds were written as dicts); the result is dicts.
    """
    merged = {}
    for item in existing or []:
        data = plain(item) if isinstance(item, BaseModel) else item
        merged[data["index"]] = data
    for item in update or []:
        data = plain(Round.model_validate(item))  # an update is checked before it joins the state
        merged[data["index"]] = data
    return [merged[i] for i in sorted(merged)]


class RunInput(BaseModel):
    """Start a run: the image, the instruction and, optionally, reference images and settings."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(
        description="Image to edit: a local file path, or thinkedit://artifacts/<sha256>.png of an earlier result.",
    )
    instruction: str = Field(min_length=1, description="What to change, in words.")
    references: list[str] = Field(
        default_factory=list,
        max_length=MAX_REFERENCES,
        description="Reference images for editors that take several (Qwen-Image-Edit-2509: 'the hat from image 2'): "
        "local paths or thinkedit://artifacts/<sha256>.png, in order (image 2, image 3, ...).",
    )
    overrides: SettingsInput | None = Field(
        default=None,
        description="Loop settings to override: over the runtime context when one is given, else over the profile.",
    )


class PreparedInput(RunInput):
    """Start a run whose images are already stored (the runner's input; ``image`` is then optional)."""

    image: str | None = Field(  # type: ignore[assignment]
        default=None,
        description="Image to edit: a local file path, or thinkedit://artifacts/<sha256>.png of an earlier result.",
    )
    run_id: str = Field(default="", description="An id for the run; the thread id when empty.")
    source: ImageRef | None = Field(default=None, description="The image, already in the artifact store.")
    reference_images: list[ImageRef] = Field(default_factory=list, description="The references, already stored.")
    notes: list[str] = Field(default_factory=list, description="What reading the stored source image changed.")


class RunOutput(BaseModel):
    """Report a finished (or paused) run: why it stopped, the chosen image and every round."""

    run_id: str = Field(default="", description="The run's id (also its checkpoint thread id).")
    instruction: str = Field(description="The user's original instruction.")
    status: RunStatus = Field(default="running", description="running, done, cancelled or error.")
    stop_reason: StopReason | None = Field(default=None, description="Why the loop stopped.")
    best_round: int | None = Field(default=None, description="Index of the chosen round.")
    final_image: ImageRef | None = Field(default=None, description="The chosen round's image.")
    rounds: list[Round] = Field(default_factory=list, description="Every round: instruction, image, scores.")
    notes: list[str] = Field(default_factory=list, description="What reading the input image changed.")


class RunState(BaseModel):
    """Hold one Think-while-Edit run: the source, the instructions and every round."""

    run_id: str = Field(default="", description="The run's id (also its checkpoint thread id).")
    image: str | None = Field(default=None, description="The image as the input named it.")
    source: ImageRef | None = Field(default=None, description="The image being edited, once stored.")
    references: list[str] = Field(default_factory=list, description="The reference images as the input named them.")
    reference_images: list[ImageRef] = Field(
        default_factory=list, description="The reference images (image 2, 3, ...), once stored."
    )
    instruction: str = Field(min_length=1, description="The user's original instruction.")
    overrides: SettingsInput | None = Field(default=None, description="Overrides as the input gave them.")
    settings: LoopSettings | None = Field(
        default=None,
        description="The settings of a run started without a LoopSettings context (a graph server, a parent graph), "
        "resolved once by the first node; a run the Runner drives keeps its settings in its record instead.",
    )
    current_instruction: str = Field(default="", description="The instruction the next edit uses.")
    rounds: Annotated[list[Round], merge_rounds] = Field(default_factory=list)
    status: RunStatus = "running"
    stop_reason: StopReason | None = None
    best_round: int | None = Field(default=None, description="Index of the chosen round.")
    final_image: ImageRef | None = Field(default=None, description="The chosen round's image.")
    notes: list[str] = Field(
        default_factory=list,
        description="What reading the input image changed (EXIF orientation, colour profile, first frame of many).",
    )

    def resolved(self, context: Any = None) -> LoopSettings:
        """Return the run's settings: those ``prepare`` resolved into the state, else the run's context.

        A run driven with its ``LoopSettings`` as the context (the Runner's) stores none in the
        state; ``Runner.state`` hands its states back with the record's settings attached.
        """
        settings = self.settings or context
        if not isinstance(settings, LoopSettings):
            raise RuntimeError("run settings are not resolved yet; the prepare node resolves them")
        return settings

    def last_round(self) -> Round | None:
        """Return the most recent round, if any."""
        return self.rounds[-1] if self.rounds else None

    def total_usage(self) -> Usage:
        """Return what the run's rounds cost together (the record keeps it, every view shows it)."""
        return total_usage([r.usage for r in self.rounds])


def checkpointed(values: dict[str, Any] | None) -> RunState | None:
    """Return a run's state from its checkpoint's values, or None before its input is in.

    A run's first checkpoint, taken as it starts, holds only the channels' defaults (``rounds: []``):
    a run looked at then has no state yet, not a broken one.
    """
    return RunState.model_validate(values) if values and values.get("instruction") else None
