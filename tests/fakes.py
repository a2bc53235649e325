"""Scripted test doubles for the editor and thinker protocols (tests only, never product code)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from PIL import Image, ImageOps

from thinkedit.tools.config import EditorConfig, ThinkerConfig
from thinkedit.tools.errors import TransientBackendError
from thinkedit.tools.types import EditRequest, EditResult, JudgeRequest, Verdict


@dataclass
class ScriptedEditor:
    """Return a recognisable image per call and record every request; can fail on cue."""

    name: str = "scripted-editor"
    fail_first: int = 0
    calls: list[EditRequest] = field(default_factory=list)
    delay: float = 0.0

    async def edit(self, request: EditRequest) -> EditResult:
        self.calls.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if len(self.calls) <= self.fail_first:
            raise TransientBackendError("editor connection refused (scripted)")
        # Deterministic, distinguishable outputs: the input posterised by call number, tinted by seed.
        outs = []
        for k in range(request.num_images):
            out = ImageOps.posterize(request.image, 1 + len(self.calls) % 8)
            tint = (len(self.calls) * 30 % 256, (request.seed + k) * 40 % 256, 0)
            outs.append(Image.blend(out, Image.new("RGB", out.size, tint), 0.3))
        return EditResult(images=outs, model=self.name, seconds=0.0)


@dataclass
class ScriptedThinker:
    """Return the scripted verdicts in order (the last repeats) and record every request."""

    verdicts: list[Verdict]
    name: str = "scripted-thinker"
    calls: list[JudgeRequest] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
    served: int = 0

    async def judge(self, request: JudgeRequest) -> Verdict:
        self.calls.append(request)
        if self.failures:
            raise self.failures.pop(0)
        self.served += 1
        return self.verdicts[min(self.served, len(self.verdicts)) - 1].model_copy()


@dataclass
class FakeBackends:
    """Hand the graph the scripted backends, whatever the settings name."""

    editor_: ScriptedEditor
    thinker_: ScriptedThinker

    def editor(self, config: EditorConfig) -> ScriptedEditor:
        return self.editor_

    def thinker(self, config: ThinkerConfig) -> ScriptedThinker:
        return self.thinker_


def verdicts(*specs: tuple[float, float, str] | tuple[float, float, str, bool]) -> list[Verdict]:
    """Build verdicts from (semantic, quality, refined_instruction[, satisfied]) tuples."""
    out = []
    for spec in specs:
        semantic, quality, refined, *rest = spec
        out.append(
            Verdict(
                semantic=semantic,
                quality=quality,
                reasoning=f"scored {semantic}/{quality}",
                refined_instruction=refined,
                satisfied=rest[0] if rest else None,
            )
        )
    return out
