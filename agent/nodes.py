"""The graph's nodes: edit, critique, refine and stop."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Literal, Protocol

from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from thinkedit.agent.events import event
from thinkedit.agent.routing import paper_stop_reason, select_round, stop_reason_for
from thinkedit.agent.inputs import resolve_image, resolve_settings
from thinkedit.agent.settings import LoopSettings
from thinkedit.agent.state import Candidate, Round, RunState
from thinkedit.tools.config import EditorConfig, ThinkerConfig
from thinkedit.tools.errors import BackendError, BadInputError
from thinkedit.tools.images import intake_notes
from thinkedit.tools.protocols import Editor, Thinker
from thinkedit.tools.store import ArtifactStore
from thinkedit.tools.types import EditRequest, ImageRef, JudgeRequest

log = logging.getLogger(__name__)


class BackendProvider(Protocol):
    """Hand the nodes their editor and thinker for the run's settings."""

    def editor(self, config: EditorConfig) -> Editor: ...

    def thinker(self, config: ThinkerConfig) -> Thinker: ...


def parse_review(decision: Any) -> tuple[Literal["approve", "edit", "stop"], str | None]:
    """Read a reviewer's answer: "approve", "stop", a new instruction, or {"action", "instruction"}."""
    if isinstance(decision, str):
        text = decision.strip()
        if text.lower() in {"approve", "stop"}:
            return text.lower(), None  # type: ignore[return-value]
        if text:
            return "edit", text
    elif isinstance(decision, dict):
        action = str(decision.get("action", "")).lower()
        instruction = (decision.get("instruction") or "").strip() or None
        if action in {"approve", "stop"}:
            return action, None  # type: ignore[return-value]
        if action == "edit" and instruction:
            return "edit", instruction
    raise BadInputError(
        f"review decision {decision!r} is not 'approve', 'stop' or {{'action': 'edit', 'instruction': ...}}"
    )


def _store_input(name: str, settings: LoopSettings) -> tuple[ImageRef, list[str]]:
    """Load the image the input names, put it in the run's artifact store, and say what reading it changed."""
    store = ArtifactStore(settings.artifacts_location)
    picture = resolve_image(name, store)
    return store.put(picture), intake_notes(picture)


class LoopNodes:
    """Bind the node functions to a backend provider (the registry cache, or test fakes)."""

    def __init__(self, backends: BackendProvider) -> None:
        self.backends = backends

    async def prepare(self, state: RunState, runtime: Runtime[LoopSettings]) -> dict[str, Any]:
        """Fix the run's settings and put the source image in the store (once per run)."""
        update: dict[str, Any] = {}
        if state.settings is None:
            update["settings"] = await asyncio.to_thread(resolve_settings, runtime.context, state.overrides)
        settings = update.get("settings") or state.resolved()
        if state.source is None:
            if not state.image:
                raise BadInputError("the input names no image: give 'image' (a path or thinkedit:// URI)")
            update["source"], notes = await asyncio.to_thread(_store_input, state.image, settings)
            update["notes"] = [*state.notes, *notes]
        if state.references and not state.reference_images:
            stored = [await asyncio.to_thread(_store_input, name, settings) for name in state.references]
            update["reference_images"] = [ref for ref, _ in stored]
        if not state.run_id:
            update["run_id"] = runtime.execution_info.thread_id if runtime.execution_info else ""
        return update

    async def edit(self, state: RunState, runtime: Runtime[LoopSettings]) -> dict[str, Any]:
        """Edit the source (or the previous result) with the current instruction; store the image."""
        settings = state.resolved()
        store = await asyncio.to_thread(ArtifactStore, settings.artifacts_location)
        index = len(state.rounds) + 1
        instruction = state.current_instruction or state.instruction
        seed = settings.seed_for(index)
        previous = state.last_round()
        base = previous.image if settings.edit_from == "previous" and previous else state.source
        runtime.stream_writer(
            event("round_started", state.run_id, round=index, instruction=instruction, seed=seed)
        )
        editor = await asyncio.to_thread(self.backends.editor, settings.editor)
        image, references = await asyncio.to_thread(
            lambda: (store.get(base), [store.get(ref) for ref in state.reference_images])
        )
        k = settings.candidates
        started = time.perf_counter()
        result = await editor.edit(
            EditRequest(image=image, instruction=instruction, seed=seed, num_images=k, references=references)
        )
        seconds = time.perf_counter() - started
        if len(result.images) != k:
            raise BackendError(f"editor {editor.name} returned {len(result.images)} images; {k} were asked for")
        refs = await asyncio.to_thread(lambda: [store.put(im) for im in result.images])
        log.info("run %s round %d edited (%d image(s)) in %.2fs", state.run_id, index, k, seconds)
        runtime.stream_writer(
            event("image_ready", state.run_id, round=index, image=refs[0].model_dump(), candidates=k,
                  edit_seconds=seconds)
        )
        candidates = [Candidate(seed=seed + i, image=ref) for i, ref in enumerate(refs)] if k > 1 else []
        round_ = Round(index=index, instruction=instruction, seed=seed, image=refs[0], edit_seconds=seconds,
                       candidates=candidates)
        return {"rounds": [round_], "current_instruction": instruction}

    async def critique(self, state: RunState, runtime: Runtime[LoopSettings]) -> dict[str, Any]:
        """Ask the thinker to score this round's image and propose the next instruction."""
        settings = state.resolved()
        store = await asyncio.to_thread(ArtifactStore, settings.artifacts_location)
        round_ = state.rounds[-1]
        thinker = await asyncio.to_thread(self.backends.thinker, settings.thinker)
        shown = round_.candidates or [Candidate(seed=round_.seed, image=round_.image)]
        source, *edited = await asyncio.to_thread(
            lambda: [store.get(state.source), *(store.get(c.image) for c in shown)]
        )
        references = await asyncio.to_thread(lambda: [store.get(ref) for ref in state.reference_images])
        started = time.perf_counter()
        verdicts = await asyncio.gather(
            *(
                thinker.judge(
                    JudgeRequest(
                        source=source,
                        edited=picture,
                        original_instruction=state.instruction,
                        current_instruction=round_.instruction,
                        seed=settings.thinker_seed_for(round_.index),
                        references=references,
                    )
                )
                for picture in edited
            )
        )
        seconds = time.perf_counter() - started
        # Best-of-K keeps the best candidate (earlier seed on ties); with K = 1 this is the only one.
        best = max(range(len(shown)), key=lambda i: (verdicts[i].overall, verdicts[i].semantic, -i))
        verdict = verdicts[best]
        if settings.loop_mode == "paper":
            reason = paper_stop_reason(verdict, instruction_used=round_.instruction)
        else:
            reason = stop_reason_for(
                verdict,
                instruction_used=round_.instruction,
                round_index=round_.index,
                max_rounds=settings.max_rounds,
                semantic_threshold=settings.semantic_threshold,
                quality_threshold=settings.quality_threshold,
            )
        runtime.stream_writer(
            event(
                "verdict",
                state.run_id,
                round=round_.index,
                semantic=verdict.semantic,
                quality=verdict.quality,
                overall=verdict.overall,
                reasoning=verdict.reasoning,
                refined_instruction=verdict.refined_instruction,
                think_seconds=seconds,
                stop_reason=reason,
                **({"candidate_overall": [v.overall for v in verdicts], "best_candidate": best}
                   if round_.candidates else {}),
            )
        )
        judged = round_.model_copy(
            update={
                "verdict": verdict,
                "think_seconds": seconds,
                "image": shown[best].image,
                "seed": shown[best].seed,
                "candidates": [c.model_copy(update={"verdict": v}) for c, v in zip(round_.candidates, verdicts)],
            }
        )
        return {"rounds": [judged], "stop_reason": reason}

    async def refine(self, state: RunState, runtime: Runtime[LoopSettings]) -> Command[Literal["edit", "stop"]]:
        """Adopt the refined instruction; with review on, let a person approve, replace or stop."""
        verdict = state.rounds[-1].verdict
        proposed = verdict.refined_instruction if verdict else state.current_instruction
        if state.resolved().review:
            answer = interrupt(
                {
                    "run_id": state.run_id,
                    "round": len(state.rounds),
                    "semantic": verdict.semantic if verdict else None,
                    "quality": verdict.quality if verdict else None,
                    "reasoning": verdict.reasoning if verdict else "",
                    "instruction_used": state.rounds[-1].instruction,
                    "proposed_instruction": proposed,
                    "choices": ["approve", "stop", "<a replacement instruction>"],
                }
            )
            action, replacement = parse_review(answer)
            if action == "stop":
                return Command(goto="stop", update={"stop_reason": "reviewer_stopped"})
            if action == "edit":
                proposed = replacement or proposed
        return Command(goto="edit", update={"current_instruction": proposed})

    async def stop(self, state: RunState, runtime: Runtime[LoopSettings]) -> dict[str, Any]:
        """Choose the result round (best or last) and finish the run."""
        chosen = select_round(state.rounds, state.resolved().selection)
        update: dict[str, Any] = {
            "status": "done",
            "stop_reason": state.stop_reason or "max_rounds",
            "best_round": chosen.index if chosen else None,
            "final_image": chosen.image if chosen else None,
        }
        runtime.stream_writer(
            event(
                "run_finished",
                state.run_id,
                stop_reason=update["stop_reason"],
                best_round=update["best_round"],
                final_image=chosen.image.model_dump() if chosen else None,
            )
        )
        return update
