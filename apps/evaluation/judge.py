"""The VIEScore-style judge: any thinker backend, given a judge prompt, scores an edit on a benchmark's criteria.

VIEScore rates *semantic consistency* and *perceptual quality* from 0 to 10 and combines them
as their geometric mean; so does ``Verdict.overall``. A judge is therefore just a thinker whose
prompt file is a judge template: it answers in the thinker's own protocol (EditThinker tags or
the expert JSON), so every backend the registry knows — the in-process transformers VLM, a
chat model such as GPT-4.1 — can judge. The benchmark's item notes (a reference answer or the
knowledge an item tests) reach the prompt through the template's ``${current_instruction}``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
from importlib import resources
from pathlib import Path

from PIL.Image import Image
from pydantic import BaseModel, ConfigDict, Field

from thinkedit.apps.evaluation.benchmarks import BenchItem
from thinkedit.tools.config import ThinkerConfig
from thinkedit.tools.errors import BadInputError, ThinkerOutputError, TransientBackendError
from thinkedit.tools.protocols import Thinker
from thinkedit.tools.thinkers.verdicts import parse_editthinker, parse_expert
from thinkedit.tools.thinkers.prompt import fill, missing_placeholders
from thinkedit.tools.types import JudgeRequest, Verdict

log = logging.getLogger(__name__)

#: Per benchmark: (display name, what "semantic" covers, what "quality" covers), after each benchmark's own judge.
BENCH_CRITERIA: dict[str, tuple[str, str, str]] = {
    "gedit": (
        "GEdit-Bench",
        "semantic consistency (VIEScore SC): how completely and precisely the EDITED image carries out the "
        "instruction, and whether it is over-edited; everything the instruction did not mention must stay as in "
        "the SOURCE (0 = not done at all, 10 = done exactly and nothing else changed)",
        "perceptual quality (VIEScore PQ): how natural the EDITED image looks and how free it is of artifacts, "
        "distortion, blur or unnatural lighting (0 = broken, 10 = indistinguishable from a real photograph)",
    ),
    "imgedit": (
        "ImgEdit-Bench",
        "instruction adherence and detail preservation: the requested change is made completely and precisely, "
        "and the regions the instruction did not name are left unchanged (0 = not done or the image is ruined, "
        "10 = exactly as asked with everything else intact)",
        "image-editing quality: the edit is seamless and natural, with no visible seams, artifacts, or mismatched "
        "lighting, scale or perspective (0 = broken, 10 = flawless)",
    ),
    "rise": (
        "RISEBench",
        "instruction reasoning and appearance consistency: the EDITED image shows the correct outcome of the "
        "reasoning the instruction requires (the reference notes give the expected outcome), while everything that "
        "should not change keeps its appearance (0 = wrong outcome, 10 = correct outcome, nothing else changed)",
        "visual plausibility: the result is physically and visually plausible and free of artifacts and "
        "distortions (0 = implausible or broken, 10 = fully plausible)",
    ),
    "kris": (
        "KRIS-Bench",
        "instruction following, knowledge plausibility and visual consistency: the instruction is carried out in "
        "a way consistent with the relevant world or domain knowledge (the reference notes explain it), with "
        "unrelated content kept unchanged (0 = wrong or not done, 10 = correct and consistent)",
        "visual quality: the EDITED image is natural, sharp and free of artifacts (0 = broken, 10 = flawless)",
    ),
}


def judge_prompt_text(bench: str, protocol: str, template_file: str | Path | None = None) -> str:
    """Return the judge template for ``bench``: criteria filled in, the thinker's placeholders kept."""
    if bench not in BENCH_CRITERIA:
        raise BadInputError(f"no judge criteria for benchmark {bench!r}")
    if template_file is not None:
        path = Path(template_file).expanduser()
        if not path.is_file():
            raise BadInputError(f"judge prompt not found: {path}")
        text = path.read_text(encoding="utf-8")
    else:
        text = resources.files("thinkedit.apps.evaluation").joinpath(f"prompts/judge-{protocol}.txt").read_text("utf-8")
    missing = missing_placeholders(text)
    if missing:
        raise BadInputError(f"judge prompt lacks placeholder(s): {', '.join(missing)}")
    name, semantic, quality = BENCH_CRITERIA[bench]
    return fill(text, {"bench_name": name, "semantic_criteria": semantic, "quality_criteria": quality})


def write_judge_prompt(out_dir: str | Path, bench: str, protocol: str, template_file: str | Path | None = None) -> Path:
    """Write the filled judge template beside the results (the exact prompt used) and return its path."""
    path = Path(out_dir).expanduser() / f"judge-prompt-{bench}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(judge_prompt_text(bench, protocol, template_file), encoding="utf-8")
    return path


def judge_thinker_config(thinker: ThinkerConfig, prompt_file: str | Path) -> ThinkerConfig:
    """Turn a thinker's configuration into the judge's: same model and protocol, the judge prompt."""
    return thinker.model_copy(update={"prompt_file": str(Path(prompt_file).resolve())})


class JudgeScore(BaseModel):
    """Hold one judgement: the two 0-10 scores, their geometric mean, and why."""

    model_config = ConfigDict(extra="forbid")

    semantic: float = Field(ge=0, le=10, description="Semantic consistency / instruction following, 0-10.")
    quality: float = Field(ge=0, le=10, description="Perceptual quality, 0-10.")
    overall: float = Field(description="Geometric mean of semantic and quality (VIEScore's O).")
    reasoning: str = Field(default="", description="The judge's assessment.")
    note: str = Field(default="", description="The most serious remaining flaw, as the judge put it.")
    satisfied: bool | None = Field(default=None, description="The judge's pass/fail, for JSON-protocol judges.")
    judge: str = Field(default="", description="The judging model.")
    seconds: float = Field(default=0.0, description="Wall time of the judgement.")

    @classmethod
    def from_verdict(cls, verdict: Verdict, *, judge: str = "", seconds: float = 0.0) -> JudgeScore:
        """Read a thinker's verdict as a judgement (the refined instruction slot holds the flaw note)."""
        note = verdict.refined_instruction.strip()
        return cls(
            semantic=verdict.semantic,
            quality=verdict.quality,
            overall=verdict.overall,
            reasoning=verdict.reasoning,
            note="" if note.lower() in {"none", "none."} else note,
            satisfied=verdict.satisfied,
            judge=judge,
            seconds=round(seconds, 4),
        )


def parse_judge(text: str, protocol: str = "editthinker", *, judge: str = "") -> JudgeScore:
    """Parse a judge's raw answer in ``protocol`` (the thinker parsers do the work)."""
    parse = {"editthinker": parse_editthinker, "expert": parse_expert}.get(protocol)
    if parse is None:
        raise BadInputError(f"unknown judge protocol {protocol!r}")
    return JudgeScore.from_verdict(parse(text), judge=judge)


def item_seed(seed: int, key: str) -> int:
    """Return the judge's sampling seed for an item: fixed per (seed, key), different across items."""
    return seed * 1_000_000 + int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % 1_000_000


class Judge:
    """Score edits with a thinker that was configured with a judge prompt."""

    def __init__(self, thinker: Thinker, *, name: str | None = None, seed: int = 0, attempts: int = 3) -> None:
        self.thinker = thinker
        self.name = name or getattr(thinker, "name", "judge")
        self.seed = seed
        self.attempts = attempts

    async def score(self, source: Image, edited: Image, item: BenchItem) -> JudgeScore:
        """Judge ``edited`` against ``source`` for ``item``; retry unparseable or transient failures."""
        request = JudgeRequest(
            source=source,
            edited=edited,
            original_instruction=item.instruction,
            current_instruction=item.notes or "none",
            seed=item_seed(self.seed, item.key),
        )
        for attempt in range(1, self.attempts + 1):
            started = time.perf_counter()
            try:
                verdict = await self.thinker.judge(request)
            except (ThinkerOutputError, TransientBackendError) as exc:
                if attempt == self.attempts:
                    raise
                log.warning("judge %s failed on %s (attempt %d): %s", self.name, item.key, attempt, exc)
                request = dataclasses.replace(request, seed=item_seed(self.seed, item.key) + attempt)
                if isinstance(exc, TransientBackendError):
                    await asyncio.sleep(attempt)
                continue
            return JudgeScore.from_verdict(verdict, judge=self.name, seconds=time.perf_counter() - started)
        raise AssertionError("unreachable")  # pragma: no cover
