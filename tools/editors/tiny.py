"""Build random-weight tiny versions of real editor pipelines offline, for the ``tiny`` profile.

Each builder assembles the *real* diffusers architecture (FLUX.1 Kontext, InstructPix2Pix) from
small configs, as diffusers' own tests do, with tokenizers trained here on a few sentences, and
saves it with ``save_pretrained``; the engine then loads it with the ordinary ``from_pretrained``
path. The pictures are noise: these models exist to run every code path in seconds on a CPU.
"""

from __future__ import annotations

import math
import string
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from thinkedit.tools.registry import ensure_local_model

#: Sentences the tiny tokenizers learn their vocabularies from (edit instructions, mostly).
_CORPUS: tuple[str, ...] = (
    "make the cat wear a red hat",
    "turn the sky into a golden sunset",
    "remove the person on the left side of the picture",
    "add snow to the mountains in the background",
    "change the colour of the coffee cup to blue",
    "replace the dog with a small brown rabbit",
    "make it look like a watercolor painting",
    "give the astronaut a green helmet and white gloves",
    "put a pair of sunglasses on the man's face",
    "change the season from summer to winter",
    "add a rainbow above the house, please!",
    "make the photo black and white, keep the faces sharp.",
    "the quick brown fox jumps over the lazy dog 0123456789",
)

#: Token length the tiny text encoders see (CLIP's usual 77; also T5's budget for the tiny Kontext).
TINY_MAX_TOKENS = 77

def _learn_merges(words: Counter[str], count: int) -> list[tuple[str, str]]:
    """Learn up to ``count`` BPE merges, CLIP-style (``</w>`` ends a word), breaking ties by name.

    The ``tokenizers`` trainer breaks ties between equally frequent pairs arbitrarily, so two
    builds would differ; this small learner makes the tiny models byte-for-byte reproducible.
    """
    splits = {word: [*word[:-1], word[-1] + "</w>"] for word in words}
    merges: list[tuple[str, str]] = []
    for _ in range(count):
        pairs: Counter[tuple[str, str]] = Counter()
        for word, freq in words.items():
            symbols = splits[word]
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += freq
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        for word, symbols in splits.items():
            merged: list[str] = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            splits[word] = merged
    return merges


def clip_tokenizer() -> Any:
    """Learn a small byte-level BPE from the corpus and wrap it as transformers' ``CLIPTokenizer``."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    # An empty CLIPTokenizer carries CLIP's normaliser and word splitter; learn on what they give.
    backend = CLIPTokenizer().backend_tokenizer
    words: Counter[str] = Counter(
        piece
        for text in _CORPUS
        for piece, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text))
    )
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    # Every byte may start or end a word, so no text maps to the unknown token.
    for token in ["<|startoftext|>", "<|endoftext|>", *alphabet, *(char + "</w>" for char in alphabet)]:
        vocab.setdefault(token, len(vocab))
    merges = _learn_merges(words, count=300)
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=TINY_MAX_TOKENS)


def t5_tokenizer() -> Any:
    """Derive a small Unigram vocabulary from the corpus and wrap it as transformers' ``T5Tokenizer``.

    Pieces are the corpus's words (scored by frequency) plus every printable ASCII character, so
    any English text tokenises; the layout follows T5's: ``<pad>``=0, ``</s>``=1, ``<unk>``=2.
    """
    from transformers import T5Tokenizer

    words = Counter(word for text in _CORPUS for word in text.split())
    total = sum(words.values())
    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    for word, freq in sorted(words.items(), key=lambda item: (-item[1], item[0])):
        pieces.append(("\u2581" + word, math.log(freq / total)))
    known = {piece for piece, _ in pieces}
    for char in string.printable.strip():
        for piece in (char, "\u2581" + char):
            if piece not in known:
                pieces.append((piece, -12.0))
                known.add(piece)
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=512)


def clip_text_encoder(vocab_size: int) -> Any:
    """Return a two-layer CLIP text encoder (hidden size 32) for a vocabulary of ``vocab_size``."""
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=TINY_MAX_TOKENS,
        projection_dim=32,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_act="gelu",
    )
    return CLIPTextModel(config).eval()


def tiny_vae(latent_channels: int, **extra: Any) -> Any:
    """Return an AutoencoderKL with four blocks (8x downsampling, as the real ones) and few channels.

    The downsampling matters: with a single block the latent is as large as the image and even a
    small edit is slow on a CPU.
    """
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=4,
        sample_size=64,
        **extra,
    ).eval()


def build_tiny_kontext(out_dir: Path) -> None:
    """Build and save a random-weight ``FluxKontextPipeline`` (transformer, VAE, CLIP and T5)."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxKontextPipeline, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    latent_channels = 4
    tokenizer, tokenizer_2 = clip_tokenizer(), t5_tokenizer()
    text_encoder = clip_text_encoder(len(tokenizer))
    text_encoder_2 = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer_2),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            is_encoder_decoder=False,
            use_cache=False,
        )
    ).eval()
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=latent_channels * 4,  # latents are packed 2x2 into the channel axis
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,  # T5 d_model
        pooled_projection_dim=32,  # CLIP hidden size
        guidance_embeds=True,  # Kontext dev is guidance-distilled
        axes_dims_rope=(4, 4, 8),
    ).eval()
    vae = tiny_vae(
        latent_channels, shift_factor=0.0609, scaling_factor=1.5035, use_quant_conv=False, use_post_quant_conv=False
    )
    pipe = FluxKontextPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )
    pipe.save_pretrained(out_dir)


def build_tiny_pix2pix(out_dir: Path) -> None:
    """Build and save a random-weight ``StableDiffusionInstructPix2PixPipeline`` (8-channel UNet)."""
    import torch
    from diffusers import (
        EulerAncestralDiscreteScheduler,
        StableDiffusionInstructPix2PixPipeline,
        UNet2DConditionModel,
    )

    torch.manual_seed(0)
    latent_channels = 4
    tokenizer = clip_tokenizer()
    text_encoder = clip_text_encoder(len(tokenizer))
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=latent_channels * 2,  # noisy latents + the input image's latents
        out_channels=latent_channels,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=32,
        attention_head_dim=8,
    ).eval()
    scheduler = EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000
    )
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=tiny_vae(latent_channels),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(out_dir)


#: Builders by the model name the engine's table uses for them.
TINY_BUILDERS: dict[str, Callable[[Path], None]] = {
    "tiny-kontext": build_tiny_kontext,
    "tiny-pix2pix": build_tiny_pix2pix,
    "tiny-qwen-image-edit-plus": lambda out: _tiny_qwen().build_tiny_qwen_image_edit_plus(out),
}


def _tiny_qwen() -> Any:
    """Import the tiny Qwen-Image-Edit builder (its own module: it is a pipeline of its own)."""
    from thinkedit.tools.editors import tiny_qwen

    return tiny_qwen


def ensure_tiny_model(name: str, data_dir: str | Path | None = None) -> Path:
    """Return the directory of tiny model ``name``, building it there first if needed."""
    return ensure_local_model(name, TINY_BUILDERS[name], data_dir)
