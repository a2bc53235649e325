"""Critique edits with a Qwen2.5-VL / Qwen3-VL model running in this process (transformers).

One class serves the real EditThinker-8B (a Qwen3-VL fine-tune), any Qwen-VL model in the
expert JSON protocol, and the random-weight tiny model of the offline profile. The model itself
(loading, grammar, generation) is a ``VlmRuntime``; this class turns an edit into a prompt and the
reply into a verdict. The model loads on the first critique; critiques run one at a time in a
worker thread so the event loop stays free.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from thinkedit.tools.config import ThinkerConfig
from thinkedit.tools.thinkers.verdicts import free_text_budget, parse_verdict
from thinkedit.tools.thinkers.prompt import load_template, render_prompt, with_references
from thinkedit.tools.thinkers.vlm_runtime import PROTOCOL, VlmRuntime
from thinkedit.tools.types import JudgeRequest, Verdict

log = logging.getLogger(__name__)


class TransformersThinker:
    """Judge edits with an in-process vision-language model, in the EditThinker or expert protocol."""

    def __init__(self, config: ThinkerConfig, *, data_dir: str | Path | None = None,
                 runtime: VlmRuntime | None = None) -> None:
        self.config = config
        self.name = config.model
        self._template = load_template(config.protocol, config.prompt_file)
        if config.constrained:
            free_text_budget(config.protocol, config.max_new_tokens)  # fail now, not at the first critique
        self.runtime = runtime or VlmRuntime(config, data_dir=data_dir)

    @classmethod
    def from_components(
        cls,
        config: ThinkerConfig,
        model: Any,
        tokenizer: Any,
        image_processor: Any,
        *,
        logits_processors: Callable[[], list[Any]] | None = None,
    ) -> TransformersThinker:
        """Wrap a model already in memory (benchmarks, tests) instead of loading one."""
        runtime = VlmRuntime.from_components(
            config, model, tokenizer, image_processor, logits_processors=logits_processors
        )
        return cls(config, runtime=runtime)

    def load(self) -> None:
        """Load the model now (a server's startup) instead of on the first critique."""
        self.runtime.load()

    async def judge(self, request: JudgeRequest) -> Verdict:
        """Return the verdict for one edit, computed in a worker thread."""
        return await asyncio.to_thread(self.judge_sync, request)

    def judge_sync(self, request: JudgeRequest) -> Verdict:
        """Return the verdict for one edit; critiques are serialised (one model, one generate at a time)."""
        started = time.perf_counter()
        raw = self.runtime.generate(
            [request.source, *request.references, request.edited],
            self._prompt(request),
            grammar=PROTOCOL,
            seed=request.seed,
        ).text
        latency = time.perf_counter() - started
        log.debug("thinker %s answered in %.2fs: %r", self.name, latency, raw)
        return parse_verdict(self.config.protocol, raw, latency_s=latency, thinker=self.name)

    def _prompt(self, request: JudgeRequest) -> str:
        """Fill the template with the two instructions, stripped of the tokenizer's special tokens (``render_prompt``)."""
        prompt = render_prompt(
            self._template,
            original_instruction=request.original_instruction,
            current_instruction=request.current_instruction,
            specials=self.runtime.special_tokens(),
        )
        return with_references(prompt, len(request.references))
