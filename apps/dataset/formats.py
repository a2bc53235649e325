"""Render training samples as SFT chat records (LLaMA-Factory ShareGPT style) and RL records (pure).

The user turn is exactly what the thinker sees at inference: the source image, the edited
image, then the EditThinker prompt filled with the original and the previous instruction. The
assistant turn is the EditThinker answer format.
"""

from __future__ import annotations

import json
from typing import Any

from thinkedit.tools.thinkers.prompt import IMAGE_MARKER, render_prompt

IMAGE_TOKEN = IMAGE_MARKER

#: LLaMA-Factory ``dataset_info.json`` entries for the two files (images resolve against ``media_dir``).
DATASET_INFO: dict[str, Any] = {
    "thinkedit_sft": {
        "file_name": "sft.jsonl",
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
    }
}


def _number(value: float) -> int | float:
    """Write 8.0 as 8 and keep 7.5 as 7.5, as a model would."""
    return int(value) if float(value).is_integer() else round(float(value), 2)


def target_text(sample: dict[str, Any]) -> str:
    """Return the EditThinker answer: ``<think>…</think><score>{…}</score><answer>…</answer>``."""
    scores = json.dumps({"semantic": _number(sample["semantic"]), "quality": _number(sample["quality"])})
    return (
        f"<think>{sample['reasoning'].strip()}</think>"
        f"<score>{scores}</score>"
        f"<answer>{sample['refined_instruction'].strip()}</answer>"
    )


def prompt_text(sample: dict[str, Any], template: str) -> str:
    """Return the user turn's text: the filled prompt with one image token per image.

    A template with ``<image>`` markers (EditThinker's) keeps them where they are; otherwise the
    two tokens come first, as the thinker sees the images at inference.
    """
    filled = render_prompt(
        template,
        original_instruction=sample["original_instruction"],
        current_instruction=sample["previous_instruction"],
    )
    return filled if IMAGE_TOKEN in filled else IMAGE_TOKEN * 2 + filled


def sft_record(sample: dict[str, Any], template: str, images: tuple[str, str]) -> dict[str, Any]:
    """Return one SFT line: ``{"messages": [user, assistant], "images": [source, edited]}``."""
    return {
        "messages": [
            {"role": "user", "content": prompt_text(sample, template)},
            {"role": "assistant", "content": target_text(sample)},
        ],
        "images": list(images),
    }


def rl_record(
    sample: dict[str, Any], template: str, images: tuple[str, str], next_image: str | None
) -> dict[str, Any]:
    """Return one RL line: the prompt and images, the reference answer, and what the refinement led to."""
    return {
        "id": sample["id"],
        "trajectory": sample["trajectory"],
        "step": sample["step"],
        "task_type": sample["task_type"],
        "prompt": prompt_text(sample, template),
        "images": list(images),
        "answer": target_text(sample),
        "original_instruction": sample["original_instruction"],
        "previous_instruction": sample["previous_instruction"],
        "reference": {
            "semantic": sample["semantic"],
            "quality": sample["quality"],
            "overall": sample["overall"],
            "reasoning": sample["reasoning"],
            "refined_instruction": sample["refined_instruction"],
        },
        "next": None if next_image is None else {"image": next_image, "overall": sample["next_overall"]},
        "stop": sample["stop"],
        "thinker": sample["thinker"],
    }
