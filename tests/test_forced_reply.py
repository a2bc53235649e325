"""Check the GPU benchmark's forced replies on the tiny thinker: exact length, always parseable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import torch

from tests.bench_support.forced_reply import Replies, ReplyProcessor, ReplyStats, minimum_reply_tokens
from thinkedit.tools.config import ThinkerConfig
from thinkedit.tools.thinkers.transformers_vlm import TransformersThinker
from thinkedit.tools.types import JudgeRequest

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "chelsea.png"


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Any]:
    from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

    from thinkedit.tools.thinkers.tiny import TINY_QWEN25_VL, tiny_model_dir

    path = tiny_model_dir(TINY_QWEN25_VL, tmp_path_factory.mktemp("data"))
    return (AutoModelForImageTextToText.from_pretrained(path), AutoTokenizer.from_pretrained(path),
            AutoImageProcessor.from_pretrained(path))


def _request(seed: int) -> JudgeRequest:
    with Image.open(EXAMPLE) as image:
        photo = image.convert("RGB").resize((64, 64))
    return JudgeRequest(source=photo, edited=photo, original_instruction="add a hat",
                        current_instruction="add a red hat", seed=seed)


@pytest.mark.parametrize("length", [None, 130])
def test_replies_have_the_exact_length_and_always_parse(parts: tuple[Any, Any, Any], length: int | None) -> None:
    model, tokenizer, image_processor = parts
    length = length or minimum_reply_tokens(tokenizer)
    replies = Replies(tokenizer, length)
    config = ThinkerConfig(model="forced", max_new_tokens=length + 8, temperature=0.7, max_image_side=64)
    thinker = TransformersThinker.from_components(config, model, tokenizer, image_processor, logits_processors=replies)
    answers = set()
    for seed in range(4):
        verdict = thinker.judge_sync(_request(seed))
        stats = replies.history[-1]
        assert stats.new_tokens == length and stats.prompt_tokens > 0
        assert stats.prefill_s is not None and stats.prefill_s >= 0 and stats.decode_ms_per_token is not None
        assert 0 <= verdict.semantic <= 7 and 0 <= verdict.quality <= 7  # below the loop's threshold
        assert verdict.raw.startswith("<think>") and verdict.raw.endswith("</answer>")
        assert verdict.refined_instruction.strip() and "<" not in verdict.reasoning
        answers.add(verdict.refined_instruction)
    assert len(answers) == 4, "sampling per seed gives a new instruction each round"


def test_too_short_a_reply_is_refused(parts: tuple[Any, Any, Any]) -> None:
    _, tokenizer, _ = parts
    with pytest.raises(ValueError, match="at least"):
        Replies(tokenizer, minimum_reply_tokens(tokenizer) - 1)
    with pytest.raises(ValueError, match="only time"):
        Replies(tokenizer, None).set_length(200)


def test_timing_only_passes_scores_through_but_cleans_nan() -> None:
    stats = ReplyStats(made_at=0.0)
    processor = ReplyProcessor(stats)
    scores = torch.tensor([[1.0, float("nan"), float("-inf"), float("inf")]])
    out = processor(torch.zeros((1, 5), dtype=torch.long), scores)
    assert out[0, 0] == 1.0 and out[0, 1] == 0.0 and out[0, 2] == float("-inf") and out[0, 3] == 1e4
    processor(torch.zeros((1, 6), dtype=torch.long), scores)
    assert stats.prompt_tokens == 5 and stats.new_tokens == 2
