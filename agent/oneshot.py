"""Single steps outside the loop: one edit, or one critique (for tools that want just that)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL.Image import Image

from thinkedit.agent.nodes import BackendProvider
from thinkedit.tools.config import EditorConfig, ThinkerConfig
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.store import ArtifactStore
from thinkedit.tools.types import EditRequest, ImageRef, JudgeRequest, Verdict


@dataclass
class SingleEdit:
    """Hold one edit's stored source and result."""

    source: ImageRef
    image: ImageRef
    instruction: str
    seed: int
    model: str
    seconds: float
    references: list[ImageRef] = field(default_factory=list)


async def edit_once(
    backends: BackendProvider,
    editor: EditorConfig,
    store: ArtifactStore,
    image: Image,
    instruction: str,
    seed: int = 0,
    *,
    references: Sequence[Image] = (),
) -> SingleEdit:
    """Edit ``image`` once with the configured editor (and any reference images) and store the images."""
    if not instruction.strip():
        raise BadInputError("instruction is empty")
    source = await asyncio.to_thread(store.put, image)  # PNG encoding: seconds for a large image
    stored = await asyncio.to_thread(lambda: [store.put(ref) for ref in references])
    started = time.perf_counter()
    request = EditRequest(image=image, instruction=instruction.strip(), seed=seed, references=list(references))
    result = await backends.editor(editor).edit(request)
    seconds = time.perf_counter() - started
    return SingleEdit(
        source=source,
        image=await asyncio.to_thread(store.put, result.image),
        instruction=instruction.strip(),
        seed=seed,
        model=result.model or editor.model,
        seconds=seconds,
        references=stored,
    )


async def critique_once(
    backends: BackendProvider,
    thinker: ThinkerConfig,
    source: Image,
    edited: Image,
    instruction: str,
) -> tuple[Verdict, float]:
    """Judge one edit against its instruction; return the verdict and the seconds it took."""
    if not instruction.strip():
        raise BadInputError("instruction is empty")
    started = time.perf_counter()
    verdict = await backends.thinker(thinker).judge(
        JudgeRequest(
            source=source,
            edited=edited,
            original_instruction=instruction.strip(),
            current_instruction=instruction.strip(),
        )
    )
    return verdict, time.perf_counter() - started
