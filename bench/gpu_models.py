"""Build FLUX.1 Kontext [dev] and a Qwen3-VL-8B-sized thinker from configs, with random weights.

Nothing is downloaded: ``full`` gives the real architectures' dimensions (FLUX.1 Kontext [dev]'s
transformer, T5-XXL and CLIP-L text encoders, the 16-channel FLUX VAE; Qwen3-VL-8B's text model
and vision tower); ``shallow`` the same widths with one to three blocks per stack, which checks
every full-size shape in a few GiB; ``tiny`` the same builders at the tiny profile's sizes, so a
CPU runs every code path in seconds. Tokenizers are generated locally (``thinkedit.tools.editors.tiny``,
``thinkedit.tools.thinkers.tiny``). Weights are created on the target device in the target dtype: the
full editor and thinker hold ~21 billion parameters, which must never pass through host memory
as float32.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

Scale = Literal["full", "shallow", "tiny"]

#: black-forest-labs/FLUX.1-Kontext-dev ``transformer/config.json`` (19 double + 38 single blocks).
FLUX_DEV_TRANSFORMER: dict[str, Any] = {
    "patch_size": 1, "in_channels": 64, "num_layers": 19, "num_single_layers": 38, "attention_head_dim": 128,
    "num_attention_heads": 24, "joint_attention_dim": 4096, "pooled_projection_dim": 768,
    "guidance_embeds": True, "axes_dims_rope": (16, 56, 56),
}
#: The 16-channel FLUX VAE (``vae/config.json``).
FLUX_VAE: dict[str, Any] = {
    "in_channels": 3, "out_channels": 3, "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4, "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2, "latent_channels": 16, "norm_num_groups": 32, "sample_size": 1024, "act_fn": "silu",
    "scaling_factor": 0.3611, "shift_factor": 0.1159, "use_quant_conv": False, "use_post_quant_conv": False,
}
#: google/t5-v1_1-xxl's encoder (``text_encoder_2``); the vocabulary is the real one's size.
T5_XXL: dict[str, Any] = {
    "vocab_size": 32128, "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64,
    "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
    "feed_forward_proj": "gated-gelu", "layer_norm_epsilon": 1e-6,
}
#: openai/clip-vit-large-patch14's text tower (``text_encoder``).
CLIP_L: dict[str, Any] = {
    "vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
    "num_attention_heads": 12, "max_position_embeddings": 77, "projection_dim": 768, "hidden_act": "quick_gelu",
}
#: FLUX.1 Kontext [dev]'s ``scheduler/scheduler_config.json`` (used at both scales).
FLUX_SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": True, "base_shift": 0.5,
    "max_shift": 1.15, "base_image_seq_len": 256, "max_image_seq_len": 4096,
}

#: The tiny profile's Kontext sizes (as ``thinkedit.tools.editors.tiny`` builds them).
TINY_TRANSFORMER: dict[str, Any] = {
    "patch_size": 1, "in_channels": 16, "num_layers": 1, "num_single_layers": 1, "attention_head_dim": 16,
    "num_attention_heads": 2, "joint_attention_dim": 32, "pooled_projection_dim": 32,
    "guidance_embeds": True, "axes_dims_rope": (4, 4, 8),
}
TINY_VAE: dict[str, Any] = {
    **FLUX_VAE, "block_out_channels": (8, 16, 16, 16), "layers_per_block": 1, "latent_channels": 4,
    "norm_num_groups": 4, "sample_size": 64, "scaling_factor": 1.5035, "shift_factor": 0.0609,
}
TINY_T5: dict[str, Any] = {
    "d_model": 32, "d_kv": 8, "d_ff": 37, "num_layers": 2, "num_heads": 4, "relative_attention_num_buckets": 8,
}
TINY_CLIP: dict[str, Any] = {
    "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
    "max_position_embeddings": 77, "projection_dim": 32, "hidden_act": "gelu",
}

#: Qwen3-VL-8B-Instruct where it differs from transformers' Qwen3-VL defaults (those are the 8B's
#: vision tower: 27 blocks of width 1152, 16 heads, MLP 4304, patch 16, DeepStack at 8/16/24).
QWEN3_VL_8B_TEXT: dict[str, Any] = {
    "vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36,
    "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 262144,
    "rope_parameters": {"rope_type": "default", "rope_theta": 5e6, "mrope_section": [24, 20, 20],
                        "mrope_interleaved": True},
}
QWEN3_VL_8B_VISION: dict[str, Any] = {"out_hidden_size": 4096}
TINY_QWEN3_VL_TEXT: dict[str, Any] = {
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
    "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 4096,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1e4, "mrope_section": [2, 3, 3],
                        "mrope_interleaved": True},
}
TINY_QWEN3_VL_VISION: dict[str, Any] = {
    "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 32,
    "num_position_embeddings": 64, "deepstack_visual_indexes": [1],
}
#: Qwen3-VL's image processor: 16-px patches merged 2x2, so a 1024-px square is 1024 tokens.
QWEN3_VL_IMAGES: dict[str, Any] = {
    "patch_size": 16, "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5] * 3, "image_std": [0.5] * 3,
}
#: Pixel bounds: Qwen3-VL keeps a 1024-px square whole; the tiny thinker sees at most 64x64.
QWEN3_VL_PIXELS = {"shortest_edge": 65536, "longest_edge": 16777216}
TINY_PIXELS = {"shortest_edge": 1024, "longest_edge": 4096}


#: ``shallow``: what is cut from ``full`` (DeepStack taps move to the blocks that remain).
SHALLOW: dict[str, dict[str, Any]] = {
    "transformer": {"num_layers": 1, "num_single_layers": 1},
    "t5": {"num_layers": 1},
    "clip": {"num_hidden_layers": 1},
    "text": {"num_hidden_layers": 2},
    "vision": {"depth": 3, "deepstack_visual_indexes": [0, 1, 2]},
}


def _sized(scale: Scale, part: str, full: dict[str, Any], tiny: dict[str, Any]) -> dict[str, Any]:
    """Return the config of ``part`` at ``scale``."""
    if scale == "tiny":
        return dict(tiny)
    return {**full, **(SHALLOW[part] if scale == "shallow" else {})}


@contextmanager
def building_on(device: str, dtype: Any) -> Iterator[None]:
    """Create parameters on ``device`` in ``dtype`` while building; torch's defaults come back after."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def build_kontext(scale: Scale, device: str, dtype: Any, seed: int = 0) -> Any:
    """Return a random-weight ``FluxKontextPipeline`` at ``scale`` whose modules live on ``device``."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxKontextPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from thinkedit.tools.editors.tiny import clip_tokenizer, t5_tokenizer

    tokenizer, tokenizer_2 = clip_tokenizer(), t5_tokenizer()
    clip = _sized(scale, "clip", CLIP_L, {**TINY_CLIP, "vocab_size": len(tokenizer)})
    # Our CLIP tokenizer ends a prompt with id 1, which is how the pooled output finds it.
    clip.update(bos_token_id=0, eos_token_id=1, pad_token_id=1)
    t5 = _sized(scale, "t5", T5_XXL, {**TINY_T5, "vocab_size": len(tokenizer_2)})
    torch.manual_seed(seed)
    with building_on(device, dtype):
        modules = {
            "transformer": FluxTransformer2DModel(
                **_sized(scale, "transformer", FLUX_DEV_TRANSFORMER, TINY_TRANSFORMER)
            ),
            "vae": AutoencoderKL(**(TINY_VAE if scale == "tiny" else FLUX_VAE)),
            "text_encoder": CLIPTextModel(CLIPTextConfig(**clip)),
            "text_encoder_2": T5EncoderModel(
                T5Config(**t5, is_encoder_decoder=False, use_cache=False, tie_word_embeddings=False)
            ),
        }
    for module in modules.values():
        module.eval()
    return FluxKontextPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        **modules,
    )


def thinker_tokenizer(work_dir: str | Path) -> Any:
    """Return the locally trained Qwen-style tokenizer (and chat template) of the tiny thinker."""
    from transformers import AutoTokenizer

    from thinkedit.tools.thinkers.tiny import TINY_QWEN25_VL, tiny_model_dir

    return AutoTokenizer.from_pretrained(tiny_model_dir(TINY_QWEN25_VL, work_dir))


def build_thinker(scale: Scale, device: str, dtype: Any, work_dir: str | Path, seed: int = 0) -> tuple[Any, Any, Any]:
    """Return (model, tokenizer, image processor) of a random-weight Qwen3-VL at ``scale`` on ``device``."""
    import torch
    from transformers import GenerationConfig, Qwen2VLImageProcessorPil, Qwen3VLConfig
    from transformers import Qwen3VLForConditionalGeneration

    tokenizer = thinker_tokenizer(work_dir)
    ids = tokenizer.convert_tokens_to_ids
    full = scale != "tiny"
    vocab_size = QWEN3_VL_8B_TEXT["vocab_size"] if full else -(-len(tokenizer) // 64) * 64
    text = {**_sized(scale, "text", QWEN3_VL_8B_TEXT, TINY_QWEN3_VL_TEXT), "vocab_size": vocab_size}
    config = Qwen3VLConfig(
        text_config={**text, "pad_token_id": ids("<|endoftext|>")},
        vision_config=_sized(scale, "vision", QWEN3_VL_8B_VISION, TINY_QWEN3_VL_VISION),
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=False,
        attn_implementation="sdpa",
    )
    torch.manual_seed(seed)
    with building_on(device, dtype):
        model = Qwen3VLForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=[ids("<|im_end|>"), ids("<|endoftext|>")], pad_token_id=ids("<|endoftext|>"), do_sample=False
    )
    image_processor = Qwen2VLImageProcessorPil(**QWEN3_VL_IMAGES, size=QWEN3_VL_PIXELS if full else TINY_PIXELS)
    return model, tokenizer, image_processor


def weight_bytes(module: Any) -> int:
    """Return the bytes a module's parameters and buffers occupy."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def parameter_count(module: Any) -> int:
    """Return a module's number of parameters."""
    return sum(p.numel() for p in module.parameters())


def footprints(pipe: Any, thinker_model: Any) -> dict[str, dict[str, float]]:
    """Return each model part's parameters (billions) and weights (GiB)."""
    parts = {
        "flux_transformer": pipe.transformer,
        "t5_xxl_encoder": pipe.text_encoder_2,
        "clip_l_text": pipe.text_encoder,
        "vae": pipe.vae,
        "thinker_text": thinker_model.model.language_model,
        "thinker_vision": thinker_model.model.visual,
        "thinker_lm_head": thinker_model.lm_head,
    }
    out = {
        name: {"params_b": parameter_count(m) / 1e9, "gib": weight_bytes(m) / 2**30} for name, m in parts.items()
    }
    editor = [out[k] for k in ("flux_transformer", "t5_xxl_encoder", "clip_l_text", "vae")]
    thinker = [out[k] for k in ("thinker_text", "thinker_vision", "thinker_lm_head")]
    for name, group in (("editor_total", editor), ("thinker_total", thinker)):
        out[name] = {key: sum(item[key] for item in group) for key in ("params_b", "gib")}
    return out
