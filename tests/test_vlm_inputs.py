"""Check the Qwen-VL input helpers that stand in for the torchvision-bound processor."""

from __future__ import annotations

import pytest
from PIL import Image

from thinkedit.tools.errors import BackendError
from thinkedit.tools.thinkers.vlm_runtime import (
    IMAGE_TOKEN,
    expand_image_pads,
    prepare_images,
    scrub_special_tokens,
    user_message,
)


def test_user_message_puts_images_before_text() -> None:
    [message] = user_message("judge this")
    assert message["role"] == "user"
    assert [part["type"] for part in message["content"]] == ["image", "image", "text"]
    assert message["content"][-1]["text"] == "judge this"


def test_expand_image_pads_per_image() -> None:
    text = f"a<v>{IMAGE_TOKEN}</v>b<v>{IMAGE_TOKEN}</v>c"
    assert expand_image_pads(text, [2, 3]) == f"a<v>{IMAGE_TOKEN * 2}</v>b<v>{IMAGE_TOKEN * 3}</v>c"


@pytest.mark.parametrize("counts", [[1], [1, 1, 1]])
def test_expand_image_pads_count_mismatch(counts: list[int]) -> None:
    with pytest.raises(BackendError, match="placeholder"):
        expand_image_pads(f"{IMAGE_TOKEN}{IMAGE_TOKEN}", counts)


def test_scrub_special_tokens() -> None:
    text = "Add a hat<|im_end|>\n<|im_start|>assistant<|image_pad|><|image_pad|>"
    assert scrub_special_tokens(text, ["<|im_end|>", "<|im_start|>", IMAGE_TOKEN, ""]) == "Add a hat\nassistant"


def test_prepare_images_downscales_keeping_aspect_and_converts_to_rgb() -> None:
    big = Image.new("RGBA", (600, 400))
    small = Image.new("L", (100, 50))
    out = prepare_images([big, small], max_side=300)
    assert [im.size for im in out] == [(300, 200), (100, 50)]
    assert all(im.mode == "RGB" for im in out)
