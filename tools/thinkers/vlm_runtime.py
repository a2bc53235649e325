"""A Qwen2.5-VL / Qwen3-VL model in this process: load it, constrain it with a grammar, generate.

What any user of an in-process vision-language model needs, and nothing about critiques: the
thinker (``transformers_vlm``) builds prompts and parses verdicts on top of it, and the local
OpenAI-compatible thinker server answers chat requests with it. Everything loads through
``from_pretrained``, the same way for the tiny random-weight model, a local folder and a hub id.

Its inputs are built here without the Qwen-VL processor, which loads a video processor that needs
torchvision (not always installable beside torch): run the image processor, expand each
``<|image_pad|>`` placeholder of the chat template to one token per merged patch, and mark those
tokens in ``mm_token_type_ids`` (the model needs it for its 3-D rotary positions).

Sampling draws from torch's process-wide random generators (``generate`` takes no generator of its
own), so a sampled generation holds one lock shared by every runtime in the process: a judge and a
loop thinker sampling in different threads cannot reseed or consume each other's random state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thinkedit.tools.config import ThinkerConfig
from thinkedit.tools.errors import BackendError, BadInputError
from thinkedit.tools.images import fit_within
from thinkedit.tools.thinkers.prompt import interleave
from thinkedit.tools.thinkers.vlm_stopping import cancel_criteria, stop_token_ids

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

#: Model names that are built locally with random weights instead of downloaded.
TINY_PREFIX = "tiny-"
#: ``generate(grammar=PROTOCOL)``: constrain to the config's protocol grammar (when ``constrained``).
PROTOCOL = object()
IMAGE_TOKEN = "<|image_pad|>"
#: Held around every sampled generate of every runtime: seeding and sampling use torch's global generators.
_SAMPLING_LOCK = threading.Lock()


@dataclass
class _Loaded:
    """Hold what one loaded model needs for a critique."""

    model: Any
    tokenizer: Any
    image_processor: Any
    device: str
    dtype: Any
    image_token_id: int
    video_token_id: int | None
    grammar: Any  # xgrammar.CompiledGrammar, or None when unconstrained
    stop_ids: list[int]  # the tokens that end a turn


@dataclass
class Generation:
    """Hold one generated reply, its token counts and why it ended ("stop", "length" or "abort": cancelled)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


class VlmRuntime:
    """Hold one vision-language model: loaded once, generating one reply at a time (a lock)."""

    def __init__(self, config: ThinkerConfig, *, data_dir: str | Path | None = None) -> None:
        self.config = config
        self.name = config.model
        self._data_dir = data_dir
        self._loaded: _Loaded | None = None
        self._compiler: Any = None  # xgrammar.GrammarCompiler, made with the model
        self._lock = threading.Lock()
        self._logits_processors: Callable[[], list[Any]] | None = None

    @classmethod
    def from_components(
        cls, config: ThinkerConfig, model: Any, tokenizer: Any, image_processor: Any, *,
        logits_processors: Callable[[], list[Any]] | None = None,
    ) -> VlmRuntime:
        """Wrap a model already in memory (benchmarks, tests) instead of loading one.

        ``logits_processors``, when given, is called before every generation for fresh
        processors (they may hold per-generation state), applied after the grammar's.
        """
        runtime = cls(config)
        runtime._logits_processors = logits_processors
        if tokenizer.chat_template is None:
            raise BackendError("the thinker's tokenizer has no chat template")
        runtime._loaded = runtime._assemble(
            model.eval(), tokenizer, image_processor, "(in memory)", str(model.device), model.dtype
        )
        return runtime

    def load(self) -> None:
        """Load the model now (a server's startup) instead of on the first generation."""
        with self._lock:
            self._ensure_loaded()

    @property
    def model(self) -> Any:
        """Return the loaded transformers model (loading it first)."""
        with self._lock:
            return self._ensure_loaded().model

    def model_source(self) -> str:
        """Return where weights come from: the configured path, the built tiny model, or the hub id."""
        if self.config.path:
            return self.config.path
        if self.config.model.startswith(TINY_PREFIX):
            from thinkedit.tools.thinkers.tiny import tiny_model_dir

            return str(tiny_model_dir(self.config.model, self._data_dir))
        return self.config.model

    def special_tokens(self) -> list[str]:
        """Return the tokenizer's special-token strings, which user text must not smuggle in.

        Once the model is loaded this does not wait for a generation in progress (the tokenizer is only read).
        """
        loaded = self._loaded
        if loaded is None:
            with self._lock:
                loaded = self._ensure_loaded()
        return _special_tokens(loaded.tokenizer)

    def _ensure_loaded(self) -> _Loaded:
        """Load model, tokenizer, image processor and grammar once (caller holds the lock)."""
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def _load(self) -> _Loaded:
        """Load everything through ``from_pretrained``, the same way for tiny, local and hub models."""
        from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        from thinkedit.tools.registry import resolve_device, resolve_dtype

        source = self.model_source()
        device = resolve_device(self.config.device)
        dtype = resolve_dtype(self.config.dtype, device)
        started = time.perf_counter()
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            image_processor = AutoImageProcessor.from_pretrained(source)
            # Straight onto the device: an 8B model should not pass through host memory first.
            model = AutoModelForImageTextToText.from_pretrained(source, dtype=dtype, device_map=device)
        except (OSError, ValueError) as exc:
            raise BackendError(f"cannot load thinker model from {source!r}: {exc}") from exc
        model.eval()
        if tokenizer.chat_template is None:
            tokenizer.chat_template = _find_chat_template(source)
        loaded = self._assemble(model, tokenizer, image_processor, source, device, dtype)
        log.info(
            "loaded thinker %s from %s on %s (%s) in %.1fs",
            self.name, source, device, dtype, time.perf_counter() - started,
        )
        return loaded

    def _assemble(
        self, model: Any, tokenizer: Any, image_processor: Any, source: str, device: str, dtype: Any
    ) -> _Loaded:
        """Check that the model is a Qwen-VL style one and compile the grammar, if any."""
        image_token_id = getattr(model.config, "image_token_id", None)
        if image_token_id is None:
            raise BackendError(f"{source!r} is not a Qwen-VL style model: its config has no image_token_id")
        grammar = self._compile_grammar(model, tokenizer) if self.config.constrained else None
        video_token_id = getattr(model.config, "video_token_id", None)
        return _Loaded(model, tokenizer, image_processor, device, dtype, int(image_token_id), video_token_id, grammar,
                       stop_token_ids(model, tokenizer))

    def _compile_grammar(self, model: Any, tokenizer: Any) -> Any:
        """Compile the protocol's grammar for this tokenizer and the model's (padded) vocabulary."""
        from thinkedit.tools.thinkers.verdicts import build_grammar

        grammar = build_grammar(self.config.protocol, self.config.max_new_tokens)
        return self._grammar_compiler(model, tokenizer).compile_grammar(grammar)

    def _grammar_compiler(self, model: Any, tokenizer: Any) -> Any:
        """Return the xgrammar compiler for this tokenizer and the model's (padded) vocabulary, made once."""
        import xgrammar as xgr

        if self._compiler is None:
            vocab_size = int(model.get_output_embeddings().weight.shape[0])
            info = xgr.TokenizerInfo.from_huggingface(
                tokenizer, vocab_size=vocab_size, stop_token_ids=stop_token_ids(model, tokenizer)
            )
            self._compiler = xgr.GrammarCompiler(info)
        return self._compiler

    def compile_grammar(self, *, ebnf: str | None = None, json_schema: str | None = None) -> Any:
        """Compile a caller's grammar (EBNF, else a JSON schema, else any JSON) for this model's tokenizer."""
        with self._lock:
            loaded = self._ensure_loaded()
            compiler = self._grammar_compiler(loaded.model, loaded.tokenizer)
        if ebnf is not None:
            return compiler.compile_grammar(ebnf)
        if json_schema is not None:
            # Compact JSON: unbounded whitespace lets a weak model pad until the budget runs out.
            return compiler.compile_json_schema(json_schema, any_whitespace=False)
        return compiler.compile_builtin_json_grammar()

    def generate(
        self,
        images: list[Image],
        prompt: str,
        *,
        grammar: Any = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Generation:
        """Answer one user turn (the images, then the text).

        ``grammar`` is a compiled grammar, ``PROTOCOL`` for the config's own, or None. The prompt is
        taken as it is: callers remove special tokens from the user's parts of it (``scrub_user_text``
        with ``special_tokens``), not from their own template's. Setting ``cancel`` stops the generation
        at its next token, with finish reason "abort".
        """
        with self._lock:
            loaded = self._ensure_loaded()
            return self._generate_from(
                loaded,
                prepare_images(images, self.config.max_image_side),
                prompt,
                grammar=loaded.grammar if grammar is PROTOCOL else grammar,
                max_new_tokens=max_new_tokens or self.config.max_new_tokens,
                temperature=self.config.temperature if temperature is None else temperature,
                seed=seed,
                cancel=cancel,
            )

    def _generate_from(
        self, loaded: _Loaded, images: list[Image], prompt: str, *,
        grammar: Any, max_new_tokens: int, temperature: float, seed: int | None, cancel: threading.Event | None,
    ) -> Generation:
        """Run one generation over a user turn of images then text (caller holds the lock)."""
        import torch

        try:
            inputs = build_inputs(loaded.tokenizer, loaded.image_processor, images, prompt,
                                  image_token_id=loaded.image_token_id, video_token_id=loaded.video_token_id)
        except ValueError as exc:  # the processor's own limits (an aspect ratio past 200:1): the image's fault
            raise BadInputError(f"thinker {self.name} cannot take this image: {exc}") from exc
        inputs = {k: v.to(loaded.device) for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(loaded.dtype)
        sampling = temperature > 0
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": sampling}
        if sampling:
            kwargs["temperature"] = temperature
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        processors: list[Any] = []
        if grammar is not None:
            import xgrammar as xgr

            # One processor per generate call: it holds the matcher's state.
            processors.append(xgr.contrib.hf.LogitsProcessor(grammar))
        if self._logits_processors is not None:
            processors.extend(self._logits_processors())
        if processors:
            kwargs["logits_processor"] = processors
        if cancel is not None:
            kwargs["stopping_criteria"] = cancel_criteria(cancel)
        prompt_len = inputs["input_ids"].shape[1]
        if cancel is not None and cancel.is_set():  # cancelled while the inputs were built: no prefill
            return Generation(text="", prompt_tokens=int(prompt_len), completion_tokens=0, finish_reason="abort")
        exclusive = _SAMPLING_LOCK if sampling else nullcontext()
        with exclusive, _seeded(loaded.device, seed if sampling else None), torch.inference_mode():
            output = loaded.model.generate(**inputs, **kwargs)
        new_tokens = output[0, prompt_len:]
        # Cut off: the budget is spent and the last token does not end the turn (an answer ending on its last
        # allowed token is whole, and clients such as the openai SDK's parse() refuse a "length" answer).
        ended = new_tokens.shape[0] > 0 and int(new_tokens[-1]) in loaded.stop_ids
        cut_off = new_tokens.shape[0] >= max_new_tokens and not ended
        aborted = cancel is not None and cancel.is_set() and not ended
        if cut_off and not aborted:
            log.warning("thinker %s used all %d new tokens; its answer may be cut off", self.name, new_tokens.shape[0])
        return Generation(
            text=loaded.tokenizer.decode(new_tokens, skip_special_tokens=True),
            prompt_tokens=int(prompt_len),
            completion_tokens=int(new_tokens.shape[0]),
            finish_reason="abort" if aborted else "length" if cut_off else "stop",
        )


@contextmanager
def _seeded(device: str, seed: int | None) -> Iterator[None]:
    """Seed torch for one sampled generate, restoring the global generator state (under ``_SAMPLING_LOCK``)."""
    if seed is None:
        yield
        return
    import torch

    devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _find_chat_template(source: str) -> str:
    """Return the chat template shipped beside the processor (``chat_template.jinja``/``.json``)."""
    import json

    from transformers.utils import cached_file

    for name in ("chat_template.jinja", "chat_template.json"):
        path = cached_file(source, name, _raise_exceptions_for_missing_entries=False)
        if path:
            text = Path(path).read_text(encoding="utf-8")
            return json.loads(text)["chat_template"] if name.endswith(".json") else text
    raise BackendError(f"{source!r} has no chat template")


def _special_tokens(tokenizer: Any) -> list[str]:
    """Return a tokenizer's special-token strings: the named ones and the added tokens marked special.

    Added tokens that are not special (Qwen3's ``<think>`` and ``</think>``) are words of the text, as a
    template's format instructions use them; they cannot open or close a turn or an image slot.
    """
    added = getattr(tokenizer, "added_tokens_decoder", {}).values()
    return list(tokenizer.all_special_tokens) + [token.content for token in added if getattr(token, "special", False)]


def user_message(prompt: str, image_count: int = 2) -> list[dict[str, Any]]:
    """Return the chat: one user turn, images where the prompt's ``<image>`` markers are, else first."""
    slots: list[dict[str, Any]] = [{"type": "image"} for _ in range(image_count)]
    content = [{"type": "text", "text": part} if isinstance(part, str) else part for part in interleave(prompt, slots)]
    return [{"role": "user", "content": content}]


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
