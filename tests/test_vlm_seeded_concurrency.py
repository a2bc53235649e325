"""Seeded sampling repeats when two in-process runtimes (a judge and a loop thinker) generate at once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from thinkedit.tools.config import ThinkerConfig
from thinkedit.tools.thinkers.vlm_runtime import VlmRuntime

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "chelsea.png"


class Dawdle:
    """Leave the scores alone but pause each step, so two generations in threads interleave step by step."""

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        time.sleep(0.002)
        return scores


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory: pytest.TempPathFactory) -> list[VlmRuntime]:
    from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

    from thinkedit.tools.thinkers.tiny import TINY_QWEN25_VL, tiny_model_dir

    path = tiny_model_dir(TINY_QWEN25_VL, tmp_path_factory.mktemp("thinkedit-data"))
    config = ThinkerConfig(model="in-memory", constrained=False, temperature=1.0, max_new_tokens=24, max_image_side=64)
    return [  # two runtimes, each with its own model and lock, as the eval judge and the loop thinker have
        VlmRuntime.from_components(config, AutoModelForImageTextToText.from_pretrained(path),
                                   AutoTokenizer.from_pretrained(path), AutoImageProcessor.from_pretrained(path),
                                   logits_processors=lambda: [Dawdle()])
        for _ in range(2)
    ]


def test_concurrent_seeded_generations_match_sequential_ones(runtimes: list[VlmRuntime]) -> None:
    with Image.open(EXAMPLE) as image:
        photo = image.convert("RGB").resize((64, 64))
    calls = [(runtime, seed) for seed in (1, 2, 3) for runtime in runtimes]

    def run(call: tuple[VlmRuntime, int]) -> str:
        runtime, seed = call
        return runtime.generate([photo], "Describe the picture.", seed=seed).text

    sequential = [run(call) for call in calls]
    assert len(set(sequential)) > 1, "different seeds should sample different replies"
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        concurrent = list(pool.map(run, calls))
    assert concurrent == sequential
