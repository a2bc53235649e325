"""Run the real diffusers pipelines, built tiny with random weights, through DiffusersEditor."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import numpy as np

from thinkedit.tools.config import EditorConfig
from thinkedit.tools.editors.diffusers_engine import DiffusersEditor
from thinkedit.tools.errors import BackendError, BadInputError
from thinkedit.tools.types import EditRequest

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "chelsea.png"
TINY = ["tiny-kontext", "tiny-pix2pix"]
PIPELINES = {"tiny-kontext": "FluxKontextPipeline", "tiny-pix2pix": "StableDiffusionInstructPix2PixPipeline"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("thinkedit-data")


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """Return a 451x300 crop: neither side a multiple of 16."""
    with Image.open(EXAMPLE) as image:
        return image.convert("RGB").crop((0, 0, 451, 300))


@pytest.fixture(scope="module", params=TINY)
def editor(request: pytest.FixtureRequest, data_dir: Path) -> DiffusersEditor:
    """Build (once per module) and load a tiny editor, as the tiny profile configures it."""
    editor = DiffusersEditor(EditorConfig(model=request.param, max_side=256), data_dir=data_dir)
    editor.load()
    return editor


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def assert_same_image(a: Image.Image, b: Image.Image) -> None:
    """Assert equality up to float rounding: batched kernels sum in another order than single ones.

    Measured on the tiny pipelines: at most 2 levels (of 255) apart, in under 0.06% of values.
    """
    diff = np.abs(pixels(a) - pixels(b))
    assert diff.max() <= 3, f"max difference {diff.max()}"
    assert (diff > 0).mean() < 2e-3, f"{(diff > 0).mean():.3%} of values differ"


def test_saved_model_reloads_through_from_pretrained(editor: DiffusersEditor) -> None:
    import diffusers

    source = Path(editor.source())
    index = json.loads((source / "model_index.json").read_text())
    assert index["_class_name"] == PIPELINES[editor.name]
    assert index["tokenizer"] == ["transformers", "CLIPTokenizer"]
    pipe = getattr(diffusers, PIPELINES[editor.name]).from_pretrained(source)
    assert type(pipe).__name__ == PIPELINES[editor.name]
    ids = pipe.tokenizer("make the cat wear a hat", padding="max_length", max_length=77).input_ids
    assert len(ids) == 77 and max(ids) < pipe.text_encoder.config.vocab_size
    if editor.name == "tiny-kontext":
        assert type(pipe.tokenizer_2).__name__ == "T5Tokenizer"
        assert pipe.vae_scale_factor == 8


def test_edit_returns_the_input_size(editor: DiffusersEditor, photo: Image.Image) -> None:
    result = asyncio.run(editor.edit(EditRequest(image=photo, instruction="make the cat wear a hat", seed=1)))
    assert [image.size for image in result.images] == [(451, 300)]
    assert result.model == editor.name and result.seconds > 0
    assert result.settings == dict(editor.model.defaults)


def test_edit_without_max_side_only_crops(data_dir: Path, photo: Image.Image) -> None:
    editor = DiffusersEditor(EditorConfig(model="tiny-pix2pix"), data_dir=data_dir)
    result = editor.edit_batch([EditRequest(image=photo, instruction="add snow")])[0]
    assert result.image.size == (451, 300)


def test_seed_decides_the_image(editor: DiffusersEditor, photo: Image.Image) -> None:
    def run(seed: int) -> np.ndarray:
        return pixels(editor.edit_batch([EditRequest(image=photo, instruction="add snow", seed=seed)])[0].image)

    first, again, other = run(7), run(7), run(8)
    assert np.array_equal(first, again)
    assert np.abs(first - other).mean() > 5


def test_batch_equals_edits_done_alone(editor: DiffusersEditor, photo: Image.Image, monkeypatch: pytest.MonkeyPatch) -> None:
    other = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    requests = [
        EditRequest(image=photo, instruction="make the cat wear a hat", seed=11),
        EditRequest(image=other, instruction="turn the sky into a sunset", seed=12),
    ]
    alone = [editor.edit_batch([request])[0].image for request in requests]
    calls: list[int] = []
    original = editor._run

    def counting(pipe: Any, units: list) -> list[Image.Image]:
        calls.append(len(units))
        return original(pipe, units)

    monkeypatch.setattr(editor, "_run", counting)
    batched = editor.edit_batch(requests)
    assert calls == [2], "compatible requests should share one pipeline call"
    for single, result in zip(alone, batched, strict=True):
        assert result.image.size == (451, 300)
        assert_same_image(single, result.image)


def test_incompatible_requests_are_split(editor: DiffusersEditor, photo: Image.Image, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = editor._run
    monkeypatch.setattr(editor, "_run", lambda pipe, units: calls.append(len(units)) or original(pipe, units))
    results = editor.edit_batch(
        [
            EditRequest(image=photo, instruction="a", seed=1),
            EditRequest(image=photo, instruction="b", seed=2, settings={"num_inference_steps": 2}),
            EditRequest(image=photo, instruction="c", seed=3),
        ]
    )
    assert calls == [2, 1]
    assert [r.settings["num_inference_steps"] for r in results] == [4, 2, 4]


def test_num_images_gives_consecutive_seeds(editor: DiffusersEditor, photo: Image.Image) -> None:
    result = editor.edit_batch([EditRequest(image=photo, instruction="add snow", seed=20, num_images=2)])[0]
    first, second = result.images
    assert first.size == second.size == (451, 300)
    assert np.abs(pixels(first) - pixels(second)).mean() > 5
    assert_same_image(second, editor.edit_batch([EditRequest(image=photo, instruction="add snow", seed=21)])[0].image)


def test_request_settings_are_checked(editor: DiffusersEditor, photo: Image.Image) -> None:
    with pytest.raises(BadInputError, match="'steps'"):
        editor.edit_batch([EditRequest(image=photo, instruction="x", settings={"steps": 2})])


def test_load_is_thread_safe(data_dir: Path) -> None:
    editor = DiffusersEditor(EditorConfig(model="tiny-pix2pix"), data_dir=data_dir)
    pipes: list[Any] = []
    threads = [threading.Thread(target=lambda: pipes.append(editor.load())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(pipes) == 4 and all(pipe is pipes[0] for pipe in pipes)


def test_builds_are_deterministic(data_dir: Path, tmp_path: Path) -> None:
    from thinkedit.tools.editors.tiny import ensure_tiny_model

    first = ensure_tiny_model("tiny-pix2pix", data_dir)
    second = ensure_tiny_model("tiny-pix2pix", tmp_path)
    for part in ("unet/diffusion_pytorch_model.safetensors", "tokenizer/tokenizer.json"):
        assert (first / part).read_bytes() == (second / part).read_bytes(), part


def test_out_of_memory_becomes_a_backend_error(data_dir: Path, photo: Image.Image) -> None:
    import torch

    editor = DiffusersEditor(EditorConfig(model="tiny-pix2pix"), data_dir=data_dir)

    def exhausted(**kwargs: Any) -> None:  # a stand-in pipeline that fails the way CUDA does
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    editor._pipe = exhausted
    with pytest.raises(BackendError, match="out of memory"):
        editor.edit_batch([EditRequest(image=photo, instruction="x")])


def test_missing_weights_are_a_backend_error(tmp_path: Path, photo: Image.Image) -> None:
    editor = DiffusersEditor(EditorConfig(model="tiny-kontext", path=str(tmp_path / "nowhere")))
    with pytest.raises(BackendError, match="cannot load"):
        editor.edit_batch([EditRequest(image=photo, instruction="x")])
