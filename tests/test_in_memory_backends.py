"""Wrap models already in memory in the real editor and thinker classes (the GPU benchmark's hooks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from thinkedit.tools.config import EditorConfig, ThinkerConfig
from thinkedit.tools.editors.diffusers_engine import DiffusersEditor
from thinkedit.tools.errors import BackendError, BadInputError
from thinkedit.tools.thinkers.transformers_vlm import TransformersThinker
from thinkedit.tools.types import EditRequest, JudgeRequest, Verdict

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "chelsea.png"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("thinkedit-data")


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    with Image.open(EXAMPLE) as image:
        return image.convert("RGB").resize((64, 64))


@pytest.fixture(scope="module")
def thinker_parts(data_dir: Path) -> tuple[Any, Any, Any]:
    from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

    from thinkedit.tools.thinkers.tiny import TINY_QWEN25_VL, tiny_model_dir

    path = tiny_model_dir(TINY_QWEN25_VL, data_dir)
    return (AutoModelForImageTextToText.from_pretrained(path), AutoTokenizer.from_pretrained(path),
            AutoImageProcessor.from_pretrained(path))


def test_editor_from_pipeline_edits_without_loading(data_dir: Path, photo: Image.Image) -> None:
    from diffusers import FluxKontextPipeline

    from thinkedit.tools.editors.tiny import ensure_tiny_model

    pipe = FluxKontextPipeline.from_pretrained(ensure_tiny_model("tiny-kontext", data_dir))
    editor = DiffusersEditor.from_pipeline(
        EditorConfig(model="tiny-kontext", settings={"num_inference_steps": 2}), pipe, "cpu", max_batch_images=2
    )
    assert editor.load() is pipe and editor.device == "cpu" and editor.max_batch_images == 2
    (result,) = editor.edit_batch([EditRequest(image=photo, instruction="add a hat", seed=1, num_images=3)])
    assert len(result.images) == 3 and result.images[0].size == photo.size
    assert result.settings["num_inference_steps"] == 2


def test_editor_from_pipeline_still_checks_the_config() -> None:
    with pytest.raises(BadInputError, match="unknown setting"):
        DiffusersEditor.from_pipeline(EditorConfig(model="tiny-kontext", settings={"steps": 2}), object(), "cpu")


class CountingProcessor:
    """Count the steps of one generation, leaving the scores alone."""

    def __init__(self, made: list[CountingProcessor]) -> None:
        self.steps = 0
        made.append(self)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        self.steps += 1
        return scores


def test_thinker_from_components_runs_the_grammar_and_our_processors(
    thinker_parts: tuple[Any, Any, Any], photo: Image.Image
) -> None:
    model, tokenizer, image_processor = thinker_parts
    made: list[CountingProcessor] = []
    config = ThinkerConfig(model="in-memory", constrained=True, max_new_tokens=120, max_image_side=64)
    thinker = TransformersThinker.from_components(
        config, model, tokenizer, image_processor, logits_processors=lambda: [CountingProcessor(made)]
    )
    request = JudgeRequest(
        source=photo, edited=photo, original_instruction="add a hat", current_instruction="add a hat"
    )
    first, second = thinker.judge_sync(request), thinker.judge_sync(request)
    assert isinstance(first, Verdict) and first.raw.startswith("<think>")
    assert first.raw == second.raw  # greedy, and a fresh processor each time
    assert len(made) == 2 and all(0 < p.steps <= 120 for p in made)
    generation = thinker.runtime.generate([photo], "describe", max_new_tokens=5)
    assert len(made) == 3 and generation.completion_tokens <= 5


def test_thinker_from_components_needs_a_chat_template(thinker_parts: tuple[Any, Any, Any]) -> None:
    model, tokenizer, image_processor = thinker_parts
    template, tokenizer.chat_template = tokenizer.chat_template, None
    try:
        with pytest.raises(BackendError, match="chat template"):
            TransformersThinker.from_components(ThinkerConfig(model="x"), model, tokenizer, image_processor)
    finally:
        tokenizer.chat_template = template
