"""Build a random-weight tiny Qwen-Image-Edit-2509 ("Plus", several input images) offline.

The real ``QwenImageEditPlusPipeline`` architecture from small configs: a Qwen-Image MMDiT, the
Qwen-Image (Wan-style) VAE and a Qwen2.5-VL text encoder that reads the instruction together
with every input image, as the real model does. The Plus pipeline resizes each input to about
1 MP before its VAE; a VAE that downsamples 32x (five levels instead of three) keeps that to 16x16
latent patches per image, so a three-image edit takes seconds on a CPU. Pictures are noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Hidden size of the tiny Qwen2.5-VL text encoder (the MMDiT's joint attention width).
_TEXT_HIDDEN = 32
#: Where the processor's image half is saved (the pipeline's own ``processor`` folder is left empty).
PROCESSOR_DIR = "image_processor"


def build_tiny_qwen_image_edit_plus(out_dir: Path) -> None:
    """Build and save a random-weight ``QwenImageEditPlusPipeline`` (transformer, VAE, Qwen2.5-VL, processor)."""
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPlusPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil

    from thinkedit.tools.thinkers.tiny import SPECIAL_TOKENS, tiny_qwen25_vl_config, train_tokenizer

    torch.manual_seed(0)
    z_dim = 4
    tokenizer = train_tokenizer(vocab_size=1024)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab_size = -(-len(tokenizer) // 64) * 64
    text_encoder = Qwen2_5_VLForConditionalGeneration(
        tiny_qwen25_vl_config(ids, vocab_size, hidden=_TEXT_HIDDEN, heads=2, max_positions=8192)
    ).eval()
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=14, temporal_patch_size=2, merge_size=2, min_pixels=56 * 56, max_pixels=28 * 28 * 64
    )
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=z_dim * 4,  # latents packed 2x2 into the channel axis
        out_channels=z_dim,
        num_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=_TEXT_HIDDEN,
        axes_dims_rope=(4, 6, 6),
    ).eval()
    vae = AutoencoderKLQwenImage(
        base_dim=4,  # the encoder runs at ~1 MP per input image: keep its convolutions narrow...
        z_dim=z_dim,
        dim_mult=[1, 1, 1, 1, 1, 1],
        num_res_blocks=0,  # ...and few (the decoder still has one residual block per level)
        temperal_downsample=[False, False, False, False, False],
        latents_mean=[0.0] * z_dim,
        latents_std=[1.0] * z_dim,
    ).eval()
    pipe = QwenImageEditPlusPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        processor=None,  # saved on its own below: see ``components``
        transformer=transformer,
    )
    pipe.save_pretrained(out_dir)
    image_processor.save_pretrained(out_dir / PROCESSOR_DIR)


def components(source: str | Path) -> dict[str, Any]:
    """Return the processor to load the tiny pipeline with: a real ``Qwen2VLProcessor`` without its video half.

    transformers' Qwen-VL processor insists on its video processor, which needs torchvision, and
    PyPI's torchvision does not import beside the CPU torch here (DESIGN §11); the pipeline only
    passes it text and images. So the processor is put together from the saved tokenizer and image
    processor with the class check skipped for the missing video processor; everything it runs is
    transformers' own code.
    """
    from transformers import AutoTokenizer, Qwen2VLImageProcessorPil, Qwen2VLProcessor

    root = Path(source)
    tokenizer = AutoTokenizer.from_pretrained(root / "tokenizer")
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(root / PROCESSOR_DIR)
    processor = Qwen2VLProcessor.__new__(Qwen2VLProcessor)
    processor.check_argument_for_proper_class = lambda name, arg: None  # type: ignore[method-assign]
    Qwen2VLProcessor.__init__(processor, image_processor=image_processor, tokenizer=tokenizer, video_processor=None)
    del processor.check_argument_for_proper_class
    return {"processor": processor}
