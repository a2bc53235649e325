"""Wire schemas of the MCP tools: pydantic models with descriptions and ``extra="forbid"``.

The tools' input and output JSON schemas are generated from these models, so a misspelt
argument is an error the client sees, never a silently ignored default. A run's outputs
subclass the run view's models (``agent/view.py``), with images as resource links.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from thinkedit.agent.view import CandidateScores, RoundScores, RunCore, UsageView
from thinkedit.tools.types import MAX_REFERENCES

#: The wait budget before a long run is handed off (under the ~60 s many clients allow).
DEFAULT_WAIT_SECONDS = 45.0
#: The longest wait a call may ask for.
MAX_WAIT_SECONDS = 600.0


IMAGE_HELP = (
    "The image: a file path under the server's allowed roots, a data: URI (base64, size-limited), "
    "or a thinkedit:// URI of an earlier result (thinkedit://runs/<run_id>/final.png, "
    "thinkedit://runs/<run_id>/rounds/<n>.png, thinkedit://artifacts/<sha256>.png) to chain edits."
)
RUN_ID = Field(
    min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="The run id a think_while_edit call returned."
)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- inputs -------------------------------------------------------------------------------


class ThinkWhileEditInput(_Wire):
    """Edit an image, critique the result, refine the instruction, repeat until it is right."""

    image: str = Field(min_length=1, description=IMAGE_HELP)
    instruction: str = Field(
        min_length=1, max_length=4000, description="What to change, in words, e.g. 'put a red party hat on the cat'."
    )
    references: list[str] = Field(
        default_factory=list,
        max_length=MAX_REFERENCES,
        description="Reference images (image 2, image 3) for editors that take several, e.g. Qwen-Image-Edit-2509 "
        "('put the hat from image 2 on the cat'); same forms as image.",
    )
    max_rounds: int | None = Field(
        default=None,
        ge=1,
        le=20,
        description="At most this many edit-critique rounds (default: the profile's, else 5).",
    )
    editor: str | None = Field(
        default=None,
        description="Editor to use: a profile or editor model name from list_models (default: the server's).",
    )
    thinker: str | None = Field(
        default=None,
        description="Thinker to use: a profile or thinker model name from list_models (default: the server's).",
    )
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1, description="Seed of the edits (default 0).")
    budget: str | None = Field(
        default=None,
        max_length=40,
        description="Stop before a round that would exceed this: dollars ('0.50', '$0.50') or tokens ('20000 tokens'). "
        "The best round so far is returned, stop reason 'budget'.",
    )
    review: bool = Field(
        default=False,
        description="Pause before each refinement for a person's review. A client with form elicitation asks the "
        "person inline and the run goes on in the same call; otherwise the run returns status 'awaiting_review' "
        "with the critique and the proposed instruction, and review_run answers it.",
    )
    wait_seconds: float = Field(
        default=DEFAULT_WAIT_SECONDS,
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="Wait at most this long; a run still going then returns {run_id, status: 'running'} and goes on "
        "in the background: fetch it with get_run.",
    )


class EditImageInput(_Wire):
    """Make one edit with the editor (no critique, no loop)."""

    image: str = Field(min_length=1, description=IMAGE_HELP)
    instruction: str = Field(min_length=1, max_length=4000, description="What to change, in words.")
    references: list[str] = Field(
        default_factory=list,
        max_length=MAX_REFERENCES,
        description="Reference images (image 2, image 3) for editors that take several, e.g. Qwen-Image-Edit-2509 "
        "('put the hat from image 2 on the cat'); same forms as image.",
    )
    editor: str | None = Field(
        default=None,
        description="Editor to use: a profile or editor model name from list_models (default: the server's).",
    )
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1, description="Seed of the edit (default 0).")


class CritiqueEditInput(_Wire):
    """Ask the thinker to judge an edit: scores, reasoning and a better instruction."""

    source: str = Field(min_length=1, description="The original image. " + IMAGE_HELP)
    edited: str = Field(min_length=1, description="The edited image, same forms as source.")
    instruction: str = Field(min_length=1, max_length=4000, description="The instruction the edit was meant to follow.")
    thinker: str | None = Field(
        default=None,
        description="Thinker to use: a profile or thinker model name from list_models (default: the server's).",
    )


class GetRunInput(_Wire):
    """Fetch a run, waiting for it to finish if it is still going."""

    run_id: str = RUN_ID
    wait_seconds: float = Field(
        default=DEFAULT_WAIT_SECONDS,
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="Wait at most this long for a running run (0: just look).",
    )
    resume: bool = Field(
        default=True,
        description="Resume a run that a server restart interrupted (its record says running but nothing runs it).",
    )


class ReviewRunInput(_Wire):
    """Answer a run that waits for review: go on with the proposal, with your own instruction, or stop."""

    run_id: str = RUN_ID
    decision: Literal["approve", "edit", "stop"] = Field(
        description="'approve' uses the proposed instruction; 'edit' uses `instruction` instead; 'stop' ends the "
        "run now and returns its best round."
    )
    instruction: str | None = Field(
        default=None, min_length=1, max_length=4000, description="The replacement instruction, with decision 'edit'."
    )
    round: int | None = Field(
        default=None, ge=1, description="The round whose review this answers (the result's review.round): an answer "
        "that reaches the run after another reviewer moved it on to a later round is refused, not applied there."
    )
    wait_seconds: float = Field(
        default=DEFAULT_WAIT_SECONDS, ge=0, le=MAX_WAIT_SECONDS, description="Wait at most this long for the run's next pause or end."
    )

    @model_validator(mode="after")
    def _instruction_matches_decision(self) -> ReviewRunInput:
        """Require an instruction exactly when the decision is 'edit'."""
        if (self.decision == "edit") != (self.instruction is not None):
            raise ValueError("give 'instruction' with decision 'edit', and only then")
        return self


class PendingReview(_Wire):
    """The critique a paused run shows its reviewer."""

    round: int = Field(description="The round just critiqued.")
    semantic: float | None = Field(default=None, description="Its semantic score, 0-10.")
    quality: float | None = Field(default=None, description="Its quality score, 0-10.")
    reasoning: str = Field(default="", description="The thinker's reasoning.")
    instruction_used: str = Field(description="The instruction that round used.")
    proposed_instruction: str = Field(description="The instruction the thinker proposes next.")


class CancelRunInput(_Wire):
    """Stop a run at its next safe point and mark it cancelled."""

    run_id: str = RUN_ID


class ListModelsInput(_Wire):
    """List the editors, thinkers and profiles this server can use."""


# ---- outputs ------------------------------------------------------------------------------


class ImageInfo(_Wire):
    """Point at a full-size PNG: as an MCP resource and as a local file."""

    resource_uri: str = Field(description="Read it with resources/read, or pass it as an image input to chain edits.")
    path: str = Field(description="The full-size PNG on the server's disk.")
    width: int = Field(description="Width in pixels.")
    height: int = Field(description="Height in pixels.")
    sha256: str = Field(description="SHA-256 of the PNG bytes.")


class UsageInfo(_Wire, UsageView):
    """Calls, images, tokens, seconds and the estimated price of a round or a run."""


class CandidateInfo(_Wire, CandidateScores):
    """One of several edits made in a round (best-of-K); the round kept the best-scoring one."""

    image: ImageInfo = Field(description="The candidate image.")


class RoundInfo(_Wire, RoundScores):
    """One edit and its critique."""

    image: ImageInfo = Field(description="The edited image.")
    candidates: list[CandidateInfo] = Field(
        default_factory=list, description="Every candidate when the round made several edits (best-of-K)."
    )
    usage: UsageInfo | None = Field(default=None, description="What the round cost.")


RunStatus = Literal["running", "awaiting_review", "done", "cancelled", "error"]


class RunResult(_Wire, RunCore):
    """The trajectory of a Think-while-Edit run: every round, the choice and why."""

    run_id: str = Field(description="Pass it to get_run or cancel_run.")
    status: RunStatus = Field(description="'running' means the run goes on: call get_run to wait for it.")
    source_image: ImageInfo = Field(description="The image that was edited.")
    reference_images: list[ImageInfo] = Field(default_factory=list, description="The reference images, in order.")
    final_image: ImageInfo | None = Field(default=None, description="The chosen image, once the run is done.")
    rounds: list[RoundInfo] = Field(default_factory=list, description="Every round so far.")
    usage: UsageInfo | None = Field(default=None, description="What the run has cost so far, all rounds together.")
    outputs_dir: str | None = Field(default=None, description="final.png, round PNGs, trajectory.json, report.html.")
    review: PendingReview | None = Field(
        default=None, description="With status 'awaiting_review': the critique to answer with review_run."
    )
    message: str = Field(default="", description="What to do next, in words.")


class EditOutput(_Wire):
    """The result of one edit."""

    image: ImageInfo = Field(description="The edited image (full size).")
    source_image: ImageInfo = Field(description="The image that was edited.")
    reference_images: list[ImageInfo] = Field(default_factory=list, description="The reference images, in order.")
    instruction: str = Field(description="The instruction used.")
    seed: int = Field(description="The editor's seed.")
    editor: str = Field(description="The editor model.")
    seconds: float = Field(description="Wall time of the edit.")
    notes: list[str] = Field(
        default_factory=list,
        description="First, for a random-weight demo editor, the sentence saying its pictures are noise; then "
        "what reading the source image changed.",
    )


class CritiqueOutput(_Wire):
    """The thinker's verdict on one edit."""

    semantic: float = Field(description="Instruction following and preservation, 0-10.")
    quality: float = Field(description="Naturalness and absence of artifacts, 0-10.")
    overall: float = Field(description="Geometric mean of semantic and quality.")
    satisfied: bool | None = Field(default=None, description="The thinker's own stop signal, when it gives one.")
    reasoning: str = Field(description="The thinker's reasoning.")
    refined_instruction: str = Field(description="A better instruction to edit with next.")
    thinker: str = Field(description="The thinker model.")
    seconds: float = Field(description="Wall time of the critique.")


class BackendInfo(_Wire):
    """One editor or thinker: the backend that runs it and the model."""

    backend: str = Field(description="Registry name, e.g. 'diffusers', 'openai-images', 'transformers', 'chat-model'.")
    model: str = Field(description="Model name.")
    base_url: str | None = Field(default=None, description="Server URL for HTTP backends.")


class ProfileInfo(_Wire):
    """A named editor + thinker pair."""

    name: str = Field(description="Pass it as editor or thinker to use that profile's model.")
    description: str = Field(description="What the profile is for.")
    editor: BackendInfo
    thinker: BackendInfo


class ModelsOutput(_Wire):
    """What this server can use, and what it uses when a call names nothing."""

    profile: str = Field(description="The server's profile.")
    editor: BackendInfo = Field(description="The default editor.")
    thinker: BackendInfo = Field(description="The default thinker.")
    max_rounds: int = Field(description="The default max_rounds.")
    profiles: list[ProfileInfo] = Field(description="Every packaged profile (its editor and thinker can be named).")
