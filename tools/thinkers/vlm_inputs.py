"""Turn (source, edited, prompt) into Qwen-VL model inputs without the torchvision-bound processor.

Qwen2.5-VL and Qwen3-VL processors do three things for images: run the image processor, expand
each ``<|image_pad|>`` placeholder of the chat template to one token per merged patch, and mark
those tokens in ``mm_token_type_ids`` (the model needs it for its 3-D rotary positions). The
processors also load a video processor that needs torchvision, which does not always install
beside torch; doing the three steps here needs only the tokenizer and the image processor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from thinkedit.tools.errors import BackendError
from thinkedit.tools.images import fit_within
from thinkedit.tools.thinkers.prompt import interleave

if TYPE_CHECKING:
    from PIL.Image import Image

IMAGE_TOKEN = "<|image_pad|>"


def user_message(prompt: str, image_count: int = 2) -> list[dict[str, Any]]:
    """Return the chat: one user turn, images where the prompt's ``<image>`` markers are, else first."""
    slots: list[dict[str, Any]] = [{"type": "image"} for _ in range(image_count)]
    content = [{"type": "text", "text": part} if isinstance(part, str) else part for part in interleave(prompt, slots)]
    return [{"role": "user", "content": content}]


def scrub_special_tokens(text: str, special_tokens: list[str]) -> str:
    """Remove special-token strings from user text, so an instruction cannot forge image slots or turns."""
    for token in sorted(special_tokens, key=len, reverse=True):
        if token:
            text = text.replace(token, "")
    return text


def prepare_images(images: list[Image], max_side: int) -> list[Image]:
    """Convert to RGB and downscale so the longer side is at most ``max_side`` (aspect kept)."""
    return [fit_within(image.convert("RGB"), max_side, multiple=1) for image in images]


def expand_image_pads(text: str, tokens_per_image: list[int], image_token: str = IMAGE_TOKEN) -> str:
    """Repeat each image placeholder once per visual token of its image, as the Qwen-VL processor does."""
    parts = text.split(image_token)
    if len(parts) - 1 != len(tokens_per_image):
        raise BackendError(
            f"chat template produced {len(parts) - 1} image placeholder(s) for {len(tokens_per_image)} image(s)"
        )
    out = [parts[0]]
    for count, part in zip(tokens_per_image, parts[1:], strict=True):
        out.append(image_token * count)
        out.append(part)
    return "".join(out)


def build_inputs(
    tokenizer: Any,
    image_processor: Any,
    images: list[Image],
    prompt: str,
    *,
    image_token_id: int,
    video_token_id: int | None = None,
) -> dict[str, Any]:
    """Return the tensors ``generate`` takes: ids, mask, pixel values, grid sizes, modality types."""
    import torch

    messages = user_message(prompt, image_count=len(images))
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    vision = image_processor(images=images, return_tensors="pt")
    grid = vision["image_grid_thw"]
    merge = int(getattr(image_processor, "merge_size", 2))
    per_image = [int(row.prod().item()) // (merge * merge) for row in grid]
    image_token = tokenizer.convert_ids_to_tokens(image_token_id)
    text = expand_image_pads(text, per_image, image_token)
    encoded = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    input_ids = encoded["input_ids"]
    found = int((input_ids == image_token_id).sum().item())
    if found != sum(per_image):
        raise BackendError(f"tokenised prompt holds {found} image tokens, expected {sum(per_image)}")
    mm_types = (input_ids == image_token_id).to(torch.int32)
    if video_token_id is not None:
        mm_types = mm_types + 2 * (input_ids == video_token_id).to(torch.int32)
    return {
        "input_ids": input_ids,
        "attention_mask": encoded["attention_mask"],
        "pixel_values": vision["pixel_values"],
        "image_grid_thw": grid,
        "mm_token_type_ids": mm_types,
    }
