"""Make a random-weight thinker answer in the EditThinker format at an exact length, and time it.

Random weights neither write a verdict that parses nor stop at a sensible length. ``Replies``
hands the thinker (``TransformersThinker.from_components(logits_processors=...)``) one fresh
processor per generation which forces every reply to exactly ``new_tokens`` tokens, end of turn
included, shaped

    <think>FREE</think>\\n<score>{"semantic": D, "quality": D}</score>\\n<answer>FREE</answer><|im_end|>

The fixed parts are forced token by token. In the FREE parts the model still chooses (greedy or
sampled, as the thinker is set) among plain tokens: printable ASCII without ``<`` or ``>``, no
special tokens. Each score D is the model's choice among the digits 0-7, below the loop's 8/8
threshold, so a run always takes its full max_rounds. Every token is still one forward pass of
the whole model over its KV cache, so the time is what a model writing a reply of that length
takes; the processor adds one masked fill over the vocabulary per step.

With ``new_tokens=None`` the processor only times the generation (for the thinker's own
xgrammar-constrained decoding). Either way each processor records the prompt length, the
tokens generated and when each step's logits were ready: the first step is the prefill (vision
tower and prompt), the rest the decode.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from transformers import LogitsProcessor

#: Tokens of the refined instruction (its first must not be blank).
ANSWER_TOKENS = 24
_TEXT, _FIRST, _DIGIT = "text", "first", "digit"


@dataclass
class ReplyStats:
    """Record one generation: prompt and reply lengths, and when its steps finished."""

    made_at: float
    prompt_tokens: int = 0
    new_tokens: int = 0
    first_step_at: float | None = None
    last_step_at: float | None = None

    @property
    def prefill_s(self) -> float | None:
        """Return seconds from just before ``generate`` to the first token's logits (images + prompt)."""
        return None if self.first_step_at is None else self.first_step_at - self.made_at

    @property
    def decode_ms_per_token(self) -> float | None:
        """Return the mean milliseconds per token after the first."""
        if self.first_step_at is None or self.last_step_at is None or self.new_tokens < 2:
            return None
        return 1000 * (self.last_step_at - self.first_step_at) / (self.new_tokens - 1)


def vocabulary_sets(tokenizer: Any) -> dict[str, list[int]]:
    """Return the ids of plain tokens, plain tokens not starting blank, and the digits 0-7."""
    specials = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}))
    sets: dict[str, list[int]] = {_TEXT: [], _FIRST: [], _DIGIT: []}
    for token_id in range(len(tokenizer)):
        if token_id in specials:
            continue
        text = tokenizer.decode([token_id])
        if not text or any(not " " <= char <= "~" or char in "<>" for char in text):
            continue
        sets[_TEXT].append(token_id)
        if not text[0].isspace():
            sets[_FIRST].append(token_id)
        if len(text) == 1 and text in "01234567":
            sets[_DIGIT].append(token_id)
    for name, ids in sets.items():
        if not ids:
            raise ValueError(f"the tokenizer has no {name} tokens to build a reply from")
    return sets


def _fixed_pieces(tokenizer: Any) -> list[list[int]]:
    """Return the token ids of the format's fixed parts, in order."""
    texts = ["<think>", '</think>\n<score>{"semantic": ', ', "quality": ', "}</score>\n<answer>", "</answer>"]
    return [list(tokenizer.encode(text, add_special_tokens=False)) for text in texts]


def minimum_reply_tokens(tokenizer: Any, answer_tokens: int = ANSWER_TOKENS) -> int:
    """Return the shortest reply the plan allows: the fixed parts, two digits, the answer, one thought."""
    return sum(len(piece) for piece in _fixed_pieces(tokenizer)) + 2 + 1 + answer_tokens + 1


def reply_plan(tokenizer: Any, new_tokens: int, answer_tokens: int = ANSWER_TOKENS) -> list[int | str]:
    """Return, per reply position, the forced token id or the name of the set the model picks from."""
    shortest = minimum_reply_tokens(tokenizer, answer_tokens)
    if new_tokens < shortest:
        raise ValueError(f"a forced reply needs at least {shortest} tokens, got {new_tokens}")
    think = new_tokens - shortest + 1
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    head, to_semantic, to_quality, to_answer, tail = _fixed_pieces(tokenizer)
    return [
        *head, *[_TEXT] * think, *to_semantic, _DIGIT, *to_quality, _DIGIT, *to_answer,
        _FIRST, *[_TEXT] * (answer_tokens - 1), *tail, end,
    ]


class ReplyProcessor(LogitsProcessor):
    """Time one generation and, given a plan, force each step to the plan's token or set."""

    def __init__(
        self,
        stats: ReplyStats,
        plan: list[int | str] | None = None,
        masks_for: Callable[[torch.device, int], dict[str, torch.Tensor]] | None = None,
    ) -> None:
        """Record into ``stats``; force ``plan`` with the masks ``masks_for(device, width)`` gives."""
        self.stats, self.plan, self.masks_for = stats, plan, masks_for
        self._prompt_len: int | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Return the step's scores, restricted to what the plan allows at this position."""
        if scores.is_cuda:
            torch.cuda.synchronize(scores.device)  # the logits are ready: stamp the step honestly
        now = time.perf_counter()
        stats = self.stats
        if self._prompt_len is None:
            self._prompt_len = stats.prompt_tokens = int(input_ids.shape[1])
            stats.first_step_at = now
        stats.last_step_at = now
        stats.new_tokens = int(input_ids.shape[1]) - self._prompt_len + 1
        # A random model's logits may hold NaN or +inf; the sampler must not see them. (-inf is
        # kept: it is how a grammar before us masks tokens.)
        scores = torch.nan_to_num(scores, nan=0.0, posinf=1e4, neginf=float("-inf"))
        if self.plan is None or self.masks_for is None:
            return scores
        slot = self.plan[min(stats.new_tokens - 1, len(self.plan) - 1)]
        if isinstance(slot, int):
            forced = torch.full_like(scores, float("-inf"))
            forced[:, slot] = 0.0
            return forced
        mask = self.masks_for(scores.device, int(scores.shape[-1]))[slot]
        return scores.masked_fill(~mask, float("-inf"))


class Replies:
    """Make the thinker's per-generation processors and keep every generation's stats."""

    def __init__(self, tokenizer: Any, new_tokens: int | None, answer_tokens: int = ANSWER_TOKENS) -> None:
        """Force replies of ``new_tokens`` tokens, or only time them when it is None."""
        self.tokenizer, self.answer_tokens = tokenizer, answer_tokens
        self.sets = vocabulary_sets(tokenizer) if new_tokens is not None else None
        self.history: list[ReplyStats] = []
        self._masks: dict[tuple[str, int], dict[str, torch.Tensor]] = {}
        self.plan: list[int | str] | None = None
        self.set_length(new_tokens)

    def set_length(self, new_tokens: int | None) -> None:
        """Force later replies to ``new_tokens`` tokens (a short warm-up, then the measured length)."""
        if new_tokens is not None and self.sets is None:
            raise ValueError("these replies only time generations; build them with a length to force one")
        self.plan = None if new_tokens is None else reply_plan(self.tokenizer, new_tokens, self.answer_tokens)

    def minimum_length(self) -> int:
        """Return the shortest reply the format allows with this tokenizer."""
        return minimum_reply_tokens(self.tokenizer, self.answer_tokens)

    def __call__(self) -> list[LogitsProcessor]:
        """Return a fresh processor for one generation (the thinker calls this before each)."""
        stats = ReplyStats(made_at=time.perf_counter())
        self.history.append(stats)
        return [ReplyProcessor(stats, self.plan, self.masks_for)]

    def masks_for(self, device: torch.device, width: int) -> dict[str, torch.Tensor]:
        """Return boolean masks over a ``width``-wide vocabulary for each set, made once per device."""
        key = (str(device), width)
        if key not in self._masks:
            assert self.sets is not None
            made = {}
            for name, ids in self.sets.items():
                mask = torch.zeros(width, dtype=torch.bool, device=device)
                mask[torch.tensor(ids, device=device)] = True
                made[name] = mask
            self._masks[key] = made
        return self._masks[key]

