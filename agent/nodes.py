"""The graph's nodes: prepare, edit, critique, refine and stop.

Each node reads the run's settings from ``runtime.context`` (a ``LoopSettings``). A run started
without one (a graph server, a parent graph) has them resolved once by ``prepare`` into the state.

A critique keeps the verdicts it was billed for across node retries (``Judgements``): when one
candidate's critique fails for good, LangGraph's ``RetryPolicy`` reruns the whole critique node,
and by then the provider has billed the candidates that were answered. The node keeps those
verdicts, per round, until it returns; a retry reuses them, so every billed answer is counted
once and paid for once. Answers that were billed but could not be used (cut off, unparseable)
are kept as usage too, so the round's cost counts them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from thinkedit.agent.progress import event
from thinkedit.agent.routing import (
    over_budget, paper_stop_reason, route_after_critique, route_after_edit, select_round, stop_reason_for,
)
from thinkedit.agent.review import DECISIONS, parse_review
from thinkedit.agent.settings import LoopSettings, SettingsInput, input_roots, resolve_image, run_settings
from thinkedit.agent.state import Candidate, Round, RunState, plain
from thinkedit.tools.config import EditorConfig, ThinkerConfig, default_data_dir
from thinkedit.tools.errors import BackendError, BadInputError, ThinkerOutputError
from thinkedit.tools.images import check_references, intake_notes
from thinkedit.tools.protocols import Editor, Thinker
from thinkedit.tools.safenames import under_roots
from thinkedit.tools.store import ArtifactStore
from thinkedit.tools.types import EditRequest, ImageRef, JudgeRequest, Usage, Verdict, total_usage

log = logging.getLogger(__name__)

#: Up to this many pixels the edit node hashes its images on the event loop (quick) instead of a thread.
INLINE_HASH_PIXELS = 2 * 1024 * 1024

#: Rounds whose critique failed and may yet be retried, remembered at most (oldest forgotten first).
REMEMBERED_ROUNDS = 256


class BackendProvider(Protocol):
    """Hand the nodes their editor and thinker for the run's settings."""

    def editor(self, config: EditorConfig) -> Editor: ...

    def thinker(self, config: ThinkerConfig) -> Thinker: ...


def billed_usage(exc: BaseException) -> Usage:
    """Return what a failed critique cost: a thinker call and its tokens when the provider answered."""
    if isinstance(exc, ThinkerOutputError) and exc.billed:
        tokens_in, tokens_out = exc.billed
        return Usage(critiques=1, thinker_input_tokens=tokens_in, thinker_output_tokens=tokens_out)
    return Usage()


@dataclass
class _Round:
    verdicts: dict[int, Verdict] = field(default_factory=dict)
    wasted: Usage = field(default_factory=Usage)


class Judgements:
    """Remember the finished critiques of rounds whose critique node has not returned yet."""

    def __init__(self, limit: int = REMEMBERED_ROUNDS) -> None:
        self._rounds: OrderedDict[Hashable, _Round] = OrderedDict()
        self._limit = limit

    async def judge(self, key: Hashable, thinker: Thinker, requests: list[JudgeRequest]) -> tuple[list[Verdict], Usage]:
        """Judge every request not judged yet under ``key``; return all verdicts and the billed usage of failures.

        Each critique runs to its end even when another fails (a cancelled one might be billed and
        lost); the first failure is raised after the others' verdicts are kept for the retry.
        """
        entry = self._rounds.pop(key, None) or _Round()
        self._rounds[key] = entry
        while len(self._rounds) > self._limit:
            self._rounds.popitem(last=False)
        missing = [i for i in range(len(requests)) if i not in entry.verdicts]
        outcomes = await asyncio.gather(*(thinker.judge(requests[i]) for i in missing), return_exceptions=True)
        failure: BaseException | None = None
        for i, outcome in zip(missing, outcomes):
            if isinstance(outcome, BaseException):
                entry.wasted = entry.wasted + billed_usage(outcome)
                failure = failure or outcome
            else:
                entry.verdicts[i] = outcome
        if failure is not None:
            raise failure
        self._rounds.pop(key, None)
        return [entry.verdicts[i] for i in range(len(requests))], entry.wasted


def _store_input(name: str, settings: LoopSettings, confine: bool = False) -> tuple[ImageRef, list[str]]:
    """Load the image the input names, put it in the run's artifact store, and say what reading it changed.

    ``confine``: a local path must lie under the server's input folders (``input_roots``).
    """
    store = ArtifactStore(settings.artifacts_location)
    picture = resolve_image(name, store, input_roots(settings.data_dir) if confine else None)
    return store.put(picture), intake_notes(picture)


def _resolve(context: Any, overrides: SettingsInput | None, confine: bool) -> LoopSettings:
    """Return ``run_settings``; ``confine``: first refuse a profile file (a ``.toml`` path, from the input or the
    context) outside the server's input folders."""
    named = context.get("profile") if isinstance(context, Mapping) else getattr(context, "profile", None)
    for profile in (named, overrides.profile if overrides is not None else None) if confine else ():
        if isinstance(profile, str) and profile.endswith(".toml"):
            under_roots(profile, input_roots(str(default_data_dir())), what="profile")
    return run_settings(context, overrides)


def _thread_id(state: RunState, runtime: Runtime[LoopSettings]) -> str:
    """Return the checkpoint thread the run is saved under (its run id, for runs the Runner starts)."""
    return (runtime.execution_info.thread_id if runtime.execution_info else None) or state.run_id


class LoopNodes:
    """Bind the node functions to a backend provider (the registry cache, or test fakes)."""

    def __init__(self, backends: BackendProvider, settle: Callable[[str], Awaitable[None]] | None = None,
                 confine: bool = False) -> None:
        self.backends = backends
        #: A graph server's: the files a run's input names (images, a profile) must lie under ``input_roots``.
        self.confine = confine
        #: The checkpointer's barrier (``ArtifactsFirst.settle``): saves and artifact writes run behind
        #: the steps and are awaited when a round starts. Without one, the edit node makes its
        #: images durable itself before it returns, so any checkpointer records only durable refs.
        self.settle = settle
        self._stores: dict[str, ArtifactStore] = {}
        self.judgements = Judgements()

    async def _store(self, settings: LoopSettings) -> ArtifactStore:
        """Return the run's artifact store (opened once per location: opening touches the filesystem)."""
        location = str(settings.artifacts_location)
        if location not in self._stores:
            self._stores[location] = await asyncio.to_thread(ArtifactStore, settings.artifacts_location)
        return self._stores[location]

    async def _engine(self, kind: Literal["editor", "thinker"], config: EditorConfig | ThinkerConfig) -> Any:
        """Return the backend for ``config`` from the provider (its cache is the only one), off the event loop."""
        return await asyncio.to_thread(getattr(self.backends, kind), config)

    @staticmethod
    async def _images(store: ArtifactStore, refs: list[ImageRef]) -> list[Any]:
        """Load images: from the decoded cache on the loop, else decoding off it."""
        images = [store.cached(ref) for ref in refs]
        if any(image is None for image in images):
            return await asyncio.to_thread(lambda: [store.get(ref) for ref in refs])
        return images

    @staticmethod
    async def _put(store: ArtifactStore, images: list[Any]) -> list[ImageRef]:
        """Hash and hand on the editor's images (hashing a few MB blocks the loop no longer than a hop)."""
        if sum(im.width * im.height for im in images) <= INLINE_HASH_PIXELS:
            return [store.put(im) for im in images]
        return await asyncio.to_thread(lambda: [store.put(im) for im in images])

    async def prepare(self, state: RunState, runtime: Runtime[LoopSettings]) -> dict[str, Any]:
        """Put the source image in the store; resolve the settings of a run started without them (once per run).

        A run whose context is its ``LoopSettings`` (the Runner's, the LangChain tool's) stores
        nothing: its settings live where its caller keeps them (the run record).
        """
        update: dict[str, Any] = {}  # channel values are JSON-native (``plain``); nodes read them validated
        settings = state.settings
        if settings is None and (state.overrides is not None or not isinstance(runtime.context, LoopSettings)):
            settings = await asyncio.to_thread(_resolve, runtime.context, state.overrides, self.confine)
            update["settings"] = plain(settings)
        settings = settings or state.resolved(runtime.context)
        if state.source is None:
            if not state.image:
                raise BadInputError("the input names no image: give 'image' (a path or thinkedit:// URI)")
            source, notes = await asyncio.to_thread(_store_input, state.image, settings, self.confine)
            update["source"], update["notes"] = plain(source), [*state.notes, *notes]
        if state.references and not state.reference_images:
            check_references(state.references)
            stored = [await asyncio.to_thread(_store_input, name, settings, self.confine) for name in state.references]
            update["reference_images"] = [plain(ref) for ref, _ in stored]
        if not state.run_id:
            update["run_id"] = runtime.execution_info.thread_id if runtime.execution_info else ""
        return update

    async def edit(self, state: RunState, runtime: Runtime[LoopSettings]) -> Command[Literal["critique", "stop"]]:
        """Edit the source (or the previous result) with the current instruction; store the image."""
        settings = state.resolved(runtime.context)
        store = await self._store(settings)
        index = len(state.rounds) + 1
        instruction = state.current_instruction or state.instruction
        seed = settings.seed_for(index)
        previous = state.last_round()
        base = previous.image if settings.edit_from == "previous" and previous else state.source
        if self.settle is not None and previous is not None:
            # The rounds before this one are on disk before it starts. A first round has none to
            # wait for: the source's PNG and the run's first checkpoints are written during its edit.
            # A save of this run that failed stops it here, before the editor is paid again.
            await self.settle(_thread_id(state, runtime))
        runtime.stream_writer(
            event("round_started", state.run_id, round=index, instruction=instruction, seed=seed)
        )
        editor = await self._engine("editor", settings.editor)
        image, *references = await self._images(store, [base, *state.reference_images])
        k = settings.candidates
        started = time.perf_counter()
        result = await editor.edit(
            EditRequest(image=image, instruction=instruction, seed=seed, num_images=k, references=references)
        )
        seconds = time.perf_counter() - started
        if len(result.images) != k:
            raise BackendError(f"editor {editor.name} returned {len(result.images)} images; {k} were asked for")
        refs = await self._put(store, result.images)  # the PNGs are written behind
        if self.settle is None:
            await asyncio.to_thread(ArtifactStore.flush, refs)
        log.info("run %s round %d edited (%d image(s)) in %.2fs", state.run_id, index, k, seconds)
        runtime.stream_writer(
            event("image_ready", state.run_id, round=index, image=refs[0].model_dump(), candidates=k,
                  edit_seconds=seconds)
        )
        candidates = [Candidate(seed=seed + i, image=ref) for i, ref in enumerate(refs)] if k > 1 else []
        usage = Usage(  # priced now: a round the loop does not critique (paper mode's last) costs this
            edit_calls=1,
            images_edited=len(result.images),
            editor_input_tokens=result.usage.get("input_tokens") or 0,
            editor_output_tokens=result.usage.get("output_tokens") or 0,
            edit_seconds=seconds,
        ).priced(settings.pricing, editor=settings.editor.model, thinker=settings.thinker.model)
        round_ = Round(index=index, instruction=instruction, seed=seed, image=refs[0], edit_seconds=seconds,
                       candidates=candidates, seed_applied=result.seeded, usage=usage)
        update = {"rounds": [plain(round_)], "current_instruction": instruction}
        return Command(goto=route_after_edit(settings, index), update=update)

    async def critique(self, state: RunState, runtime: Runtime[LoopSettings]) -> Command[Literal["refine", "stop"]]:
        """Ask the thinker to score this round's image and propose the next instruction."""
        settings = state.resolved(runtime.context)
        store = await self._store(settings)
        round_ = state.rounds[-1]
        thinker = await self._engine("thinker", settings.thinker)
        shown = round_.candidates or [Candidate(seed=round_.seed, image=round_.image)]
        source, *edited = await self._images(store, [state.source, *(c.image for c in shown)])
        references = await self._images(store, list(state.reference_images))
        requests = [
            JudgeRequest(
                source=source,
                edited=picture,
                original_instruction=state.instruction,
                current_instruction=round_.instruction,
                seed=settings.thinker_seed_for(round_.index),
                references=references,
            )
            for picture in edited
        ]
        # A node retry reuses the verdicts already billed for this round and asks only for the rest.
        key = (state.run_id, round_.index, round_.instruction, tuple(c.image.sha256 for c in shown))
        started = time.perf_counter()
        verdicts, wasted = await self.judgements.judge(key, thinker, requests)
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
        usage = round_.usage.model_copy(
            update={
                "critiques": len(verdicts) + wasted.critiques,
                "thinker_input_tokens": sum(v.input_tokens or 0 for v in verdicts) + wasted.thinker_input_tokens,
                "thinker_output_tokens": sum(v.output_tokens or 0 for v in verdicts) + wasted.thinker_output_tokens,
                "think_seconds": seconds,
            }
        ).priced(settings.pricing, editor=settings.editor.model, thinker=settings.thinker.model)
        if reason is None:
            spent = total_usage([r.usage for r in state.rounds[:-1]] + [usage])
            if over_budget(spent, usage, settings.budget):
                reason = "budget"
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
                usage=usage.model_dump(),
                **({"candidate_overall": [v.overall for v in verdicts], "best_candidate": best}
                   if round_.candidates else {}),
            )
        )
        judged = round_.model_copy(
            update={
                "verdict": verdict,
                "think_seconds": seconds,
                "usage": usage,
                "image": shown[best].image,
                "seed": shown[best].seed,
                "candidates": [c.model_copy(update={"verdict": v}) for c, v in zip(round_.candidates, verdicts)],
            }
        )
        return Command(goto=route_after_critique(reason), update={"rounds": [plain(judged)], "stop_reason": reason})

    async def refine(self, state: RunState, runtime: Runtime[LoopSettings]) -> Command[Literal["edit", "stop"]]:
        """Adopt the refined instruction; with review on, let a person approve, replace or stop."""
        verdict = state.rounds[-1].verdict
        proposed = verdict.refined_instruction if verdict else state.current_instruction
        if state.resolved(runtime.context).review:
            question: dict[str, Any] = {
                "run_id": state.run_id,
                "round": len(state.rounds),
                "semantic": verdict.semantic if verdict else None,
                "quality": verdict.quality if verdict else None,
                "reasoning": verdict.reasoning if verdict else "",
                "instruction_used": state.rounds[-1].instruction,
                "proposed_instruction": proposed,
                # Resume with {"decision": ..., "instruction": ...} (the instruction goes with "edit").
                "decisions": list(DECISIONS),
            }
            while True:  # an answer it cannot take is asked again, saying why: LangGraph keeps each answer given,
                try:  # so raising here would replay the refused one on every later resume and strand the run
                    decision, replacement = parse_review(interrupt(question))
                    break
                except BadInputError as exc:
                    question = {**question, "error": str(exc)}
            if decision == "stop":
                return Command(goto="stop", update={"stop_reason": "reviewer_stopped"})
            if decision == "edit":
                proposed = replacement or proposed
        return Command(goto="edit", update={"current_instruction": proposed})

    async def stop(self, state: RunState, runtime: Runtime[LoopSettings]) -> dict[str, Any]:
        """Choose the result round (best or last) and finish the run."""
        if self.settle is not None:  # a run whose rounds could not all be saved never reports itself done
            await self.settle(_thread_id(state, runtime))
        chosen = select_round(state.rounds, state.resolved(runtime.context).selection)
        update: dict[str, Any] = {
            "status": "done",
            "stop_reason": state.stop_reason or "max_rounds",
            "best_round": chosen.index if chosen else None,
            "final_image": plain(chosen.image) if chosen else None,
        }
        runtime.stream_writer(
            event(
                "run_finished",
                state.run_id,
                stop_reason=update["stop_reason"],
                best_round=update["best_round"],
                final_image=update["final_image"],
            )
        )
        return update
