"""Build a random-weight tiny Qwen2.5-VL thinker offline, so every code path runs on a CPU.

The model is the real ``Qwen2_5_VLForConditionalGeneration`` architecture shrunk to a few
thousand parameters, with a byte-level BPE tokenizer trained here on a small built-in corpus,
a Qwen-style chat template and the Qwen2-VL image-processor config. Everything is written with
``save_pretrained`` so the thinker loads it through ``from_pretrained(local_dir)``, exactly as
it loads a real checkpoint. Its verdicts are meaningless; constrained decoding keeps them
well-formed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from thinkedit.tools.errors import BadInputError
from thinkedit.tools.registry import ensure_local_model

log = logging.getLogger(__name__)

TINY_QWEN25_VL = "tiny-qwen2.5-vl"

#: Qwen's special tokens, in Qwen's order (their ids follow the trained vocabulary here).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: Qwen's pre-tokenisation regex (the one Qwen2's tokenizer uses).
_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

#: A Qwen2.5-VL-style chat template: one ``<|image_pad|>`` per image, expanded by the caller.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part or 'image_url' in part %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_EXTRA_CORPUS = """\
<think>The edit follows the instruction but the colour of the sky changed.</think>\
<score>{"semantic": 7, "quality": 8.5}</score><answer>Make the cat wear a red hat.</answer>
<think>The hat is missing and the background is blurred.</think>\
<score>{"semantic": 3, "quality": 6}</score><answer>Add a red hat to the cat, keep the background sharp.</answer>
{"is_satisfied": false, "reason": "The cup is still white.", "semantic": 4, "quality": 9,\
 "new_rewritten_prompt": "Paint the coffee cup blue, keep everything else unchanged."}
{"is_satisfied": true, "reason": "Done as asked.", "semantic": 9.5, "quality": 10,\
 "new_rewritten_prompt": "Replace the sky with a sunset."}
Remove the person on the left. Change the season to winter. Turn the photo into a watercolour.
"""


def _corpus() -> list[str]:
    """Return the training text: our prompt templates plus sample answers in both protocols."""
    prompts = resources.files("thinkedit.tools.thinkers").joinpath("prompts")
    texts = [prompts.joinpath(f"{p}.txt").read_text("utf-8") for p in ("editthinker", "expert")]
    return [*texts, _EXTRA_CORPUS]


def train_tokenizer(vocab_size: int) -> Any:
    """Train a byte-level BPE like Qwen's and wrap it as a transformers fast tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=list(SPECIAL_TOKENS),
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=32768,
    )


def tiny_qwen25_vl_config(ids: dict[str, int], vocab_size: int, *, hidden: int = 32, heads: int = 2,
                          max_positions: int = 4096) -> Any:
    """Return the config of a tiny Qwen2.5-VL (2 layers) for our locally trained tokenizer's ``ids``.

    The tiny thinker and the tiny Qwen-Image-Edit's text encoder are both this architecture.
    """
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": hidden,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": heads,
            "num_key_value_heads": heads,
            "max_position_embeddings": max_positions,
            "max_window_layers": 2,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": hidden,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )


def build_tiny_qwen25_vl(out_dir: Path) -> None:
    """Write a random-weight tiny Qwen2.5-VL (seed 0), its tokenizer and image processor to ``out_dir``."""
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLImageProcessorPil,
    )

    tokenizer = train_tokenizer(vocab_size=1024)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab_size = -(-len(tokenizer) // 64) * 64  # padded, as real checkpoints are
    hidden, heads = 32, 2
    config = tiny_qwen25_vl_config(ids, vocab_size, hidden=hidden, heads=heads)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
        do_sample=False,
    )
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=14, temporal_patch_size=2, merge_size=2, min_pixels=56 * 56, max_pixels=28 * 28 * 256
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    image_processor.save_pretrained(out_dir)
    log.info("built %s: %d parameters, vocab %d", TINY_QWEN25_VL, model.num_parameters(), vocab_size)


#: Locally buildable thinker models, by name.
TINY_BUILDERS: dict[str, Callable[[Path], None]] = {TINY_QWEN25_VL: build_tiny_qwen25_vl}


def tiny_model_dir(name: str, data_dir: str | Path | None = None) -> Path:
    """Return the directory of the tiny model ``name``, building it on first use."""
    try:
        build = TINY_BUILDERS[name]
    except KeyError:
        raise BadInputError(f"unknown tiny thinker {name!r}; choose from {sorted(TINY_BUILDERS)}") from None
    return ensure_local_model(name, build, data_dir)
