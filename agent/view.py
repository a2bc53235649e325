"""One read model of a run: its checkpointed state, settings and record read into a ``RunView``.

Every surface renders this view: ``trajectory.json`` and ``report.html`` (``agent/viewer.py``), recordings
(``agent/recording.py``), the gallery, the MCP results and App viewer, the LangChain tool and
``thinkedit runs``. The MCP wire schemas subclass these models, so a field is declared once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, FiniteFloat

from thinkedit.agent.settings import LoopSettings
from thinkedit.tools.profiles import DEMO_NOTE, is_demo
from thinkedit.tools.types import ImageRef, Usage

if TYPE_CHECKING:
    from thinkedit.agent.runs import Runner, RunRecord
    from thinkedit.agent.state import RunState

#: What the view says for a round whose editor takes no seed.
NO_SEED_NOTE = "the editor's API takes no seed: this round is not reproducible by seed"
#: Fields of the view that ``trajectory.json`` leaves out: they come from the run's record, not its trajectory.
RECORD_FIELDS = frozenset({"error", "created_at", "updated_at"})


class UsageView(BaseModel):
    """Calls, images, tokens, seconds and the estimated price of a round or a run."""

    edit_calls: int = Field(description="Editor calls.")
    images_edited: int = Field(description="Images the editor made.")
    critiques: int = Field(description="Thinker calls.")
    thinker_input_tokens: int = Field(description="Tokens the thinker read.")
    thinker_output_tokens: int = Field(description="Tokens the thinker wrote.")
    editor_input_tokens: int = Field(description="Tokens the editor billed in (gpt-image).")
    editor_output_tokens: int = Field(description="Tokens the editor billed out (gpt-image).")
    tokens: int = Field(description="All tokens counted.")
    edit_seconds: float = Field(description="Wall time of the editor calls.")
    think_seconds: float = Field(description="Wall time of the thinker calls.")
    cost_usd: float | None = Field(description="Estimated US dollars from the profile's [pricing]; null when unpriced.")
    unpriced: list[str] = Field(default_factory=list, description="Models used that have no price.")

    @classmethod
    def of(cls, usage: Usage) -> UsageView:
        """Return a round's or a run's usage with its token total."""
        return cls(**usage.model_dump(), tokens=usage.tokens)


class CandidateScores(BaseModel):
    """One of several edits made in a round (best-of-K); the round kept the best-scoring one."""

    seed: int | None = Field(description="The editor's seed for this candidate (null: the API takes none).")
    semantic: FiniteFloat | None = Field(description="Instruction following and preservation, 0-10.")
    quality: FiniteFloat | None = Field(description="Naturalness and absence of artifacts, 0-10.")
    overall: FiniteFloat | None = Field(description="Geometric mean of semantic and quality.")


class CandidateView(CandidateScores):
    """A candidate with its stored image."""

    image: ImageRef = Field(description="The candidate image.")


class RoundScores(BaseModel):
    """One edit and its critique: what every surface shows of a round besides its images and cost."""

    index: int = Field(description="1-based round number.")
    instruction: str = Field(description="The instruction the editor was given.")
    seed: int | None = Field(description="The editor's seed (null: the editor's API takes none).")
    seed_note: str | None = Field(default=None, description="Why there is no seed, when there is none.")
    semantic: FiniteFloat | None = Field(description="Instruction following and preservation, 0-10.")
    quality: FiniteFloat | None = Field(description="Naturalness and absence of artifacts, 0-10.")
    overall: FiniteFloat | None = Field(description="Geometric mean of semantic and quality.")
    satisfied: bool | None = Field(description="The thinker's own stop signal, when it gives one.")
    reasoning: str | None = Field(description="The thinker's reasoning.")
    refined_instruction: str | None = Field(description="The instruction the thinker proposed next.")
    edit_seconds: float = Field(description="Wall time of the edit.")
    think_seconds: float = Field(description="Wall time of the critique.")


class RoundView(RoundScores):
    """A round with its stored image, the thinker's raw output, its cost and its candidates."""

    image: ImageRef = Field(description="The edited image.")
    raw_thinker_output: str | None = Field(default=None, description="What the thinker answered, as it came.")
    usage: UsageView = Field(description="What the round cost.")
    candidates: list[CandidateView] = Field(default_factory=list, description="Every candidate (best-of-K).")


class SeedPolicyView(BaseModel):
    """How the run's seeds were chosen, and whether the editor applied them."""

    policy: str | None
    applied: bool
    note: str | None


class RunCore(BaseModel):
    """What every surface says of a run besides its images, rounds and cost."""

    run_id: str = Field(description="The run's id.")
    instruction: str = Field(description="The user's original instruction.")
    stop_reason: str | None = Field(default=None, description="Why the loop stopped (threshold_met, max_rounds, ...).")
    best_round: int | None = Field(default=None, description="The round whose image was chosen.")
    error: str | None = Field(default=None, description="What went wrong, when status is error or cancelled.")
    notes: list[str] = Field(
        default_factory=list,
        description="First, for random-weight demo models, the sentence saying their pictures are noise; then "
        "what reading the source image changed (EXIF orientation, colour profile, first frame of many).",
    )


class RunView(RunCore):
    """A run as every surface shows it: the trajectory, plus the record's status, error and times."""

    status: str
    profile: str | None = None
    editor: str | None = None
    thinker: str | None = None
    seed_policy: SeedPolicyView
    budget: dict[str, Any] | None = None
    usage: UsageView | None = None
    source_image: ImageRef
    reference_images: list[ImageRef] = Field(default_factory=list)
    final_image: ImageRef | None = None
    demo_note: str | None = None
    rounds: list[RoundView] = Field(default_factory=list)
    created_at: str | None = None
    updated_at: str | None = None
    #: The settings the run used, for renderers (never dumped: they may hold keys).
    settings: LoopSettings | None = Field(default=None, exclude=True)

    def trajectory(self) -> dict[str, Any]:
        """Return the run as ``trajectory.json`` holds it (the view less what only the record knows)."""
        return self.model_dump(mode="json", exclude=RECORD_FIELDS)

    def chosen(self) -> RoundView | None:
        """Return the chosen round (None before the run chose one)."""
        return next((r for r in self.rounds if r.index == self.best_round), None)


def run_usage(state: RunState) -> dict[str, Any]:
    """Return the run's total usage (calls, images, tokens, seconds, estimated price) as JSON data."""
    return UsageView.of(state.total_usage()).model_dump()


def _stored_usage(data: dict[str, Any]) -> UsageView:
    """Read the usage a record kept when the run stopped (fields a version added since count as zero)."""
    return UsageView.of(Usage.model_validate({k: v for k, v in data.items() if k in Usage.model_fields}))


def _round(r: Any) -> RoundView:
    """Describe one of the state's rounds."""
    v = r.verdict
    return RoundView(
        index=r.index,
        instruction=r.instruction,
        seed=r.seed if r.seed_applied else None,
        seed_note=None if r.seed_applied else NO_SEED_NOTE,
        image=r.image,
        semantic=v.semantic if v else None,
        quality=v.quality if v else None,
        overall=v.overall if v else None,
        satisfied=v.satisfied if v else None,
        reasoning=v.reasoning if v else None,
        refined_instruction=v.refined_instruction if v else None,
        raw_thinker_output=v.raw if v else None,
        edit_seconds=round(r.edit_seconds, 4),
        think_seconds=round(r.think_seconds, 4),
        usage=UsageView.of(r.usage),
        candidates=[
            CandidateView(
                seed=c.seed if r.seed_applied else None,
                image=c.image,
                semantic=c.verdict.semantic if c.verdict else None,
                quality=c.verdict.quality if c.verdict else None,
                overall=c.verdict.overall if c.verdict else None,
            )
            for c in r.candidates
        ],
    )


def run_view(
    state: RunState | None, settings: LoopSettings | None, record: RunRecord | None = None, *, status: str | None = None
) -> RunView:
    """Read a run into its one view: from its state, its settings and (when there is one) its record.

    ``status`` overrides the stored one (``running`` while a task of this process drives it). A run
    with no checkpointed source yet is described from its record alone.
    """
    demo = settings is not None and is_demo(settings.editor, settings.thinker)
    has_state = state is not None and state.source is not None
    rounds = state.rounds if has_state else []
    seeded = all(r.seed_applied for r in rounds)
    notes = list(state.notes if has_state else record.notes if record is not None else [])
    if has_state:
        usage: UsageView | None = UsageView.of(state.total_usage())  # type: ignore[union-attr]
    else:
        usage = _stored_usage(record.usage) if record is not None and record.usage else None
    base = state if has_state else record
    if base is None:
        raise ValueError("a run view needs the run's state or its record")
    return RunView(
        run_id=base.run_id,
        instruction=base.instruction,
        status=status or (record.status if record is not None else state.status),  # type: ignore[union-attr]
        stop_reason=state.stop_reason if has_state else None,
        best_round=state.best_round if has_state else None,
        error=record.error if record is not None else None,
        profile=settings.profile if settings else None,
        editor=settings.editor.model if settings else None,
        thinker=settings.thinker.model if settings else None,
        seed_policy=SeedPolicyView(
            policy=settings.seed_policy if settings else None, applied=seeded, note=None if seeded else NO_SEED_NOTE
        ),
        budget=settings.budget.model_dump() if settings and settings.budget else None,
        usage=usage,
        source_image=state.source if has_state else record.source,  # type: ignore[union-attr]
        reference_images=state.reference_images if has_state else record.references,  # type: ignore[union-attr]
        final_image=state.final_image if has_state else None,
        demo_note=DEMO_NOTE if demo else None,
        notes=[DEMO_NOTE, *notes] if demo else notes,
        rounds=[_round(r) for r in rounds],
        created_at=record.created_at if record is not None else None,
        updated_at=record.updated_at if record is not None else None,
        settings=settings,
    )


@dataclass(frozen=True)
class RunRead:
    """A run read once: its record, its checkpointed state and the review it waits on (if any)."""

    record: RunRecord
    state: RunState | None
    pending: dict[str, Any] | None


async def read_run(runner: Runner, run_id: str, record: RunRecord | None = None) -> RunRead:
    """Read a run's record (unless given) and its checkpoint, once each (``BadInputError`` for an unknown id)."""
    from thinkedit.agent.state import checkpointed  # the run's side of the view: not needed to describe the tools

    record = record if record is not None else runner.registry.load(run_id)
    snapshot = await runner.graph.aget_state({"configurable": {"thread_id": run_id}})
    state = checkpointed(snapshot.values)
    pending = snapshot.interrupts[0].value if snapshot.interrupts else None
    return RunRead(record, state, pending)
