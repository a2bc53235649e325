"""Each real editor works at its model's trained size: a 12 MP photo is scaled down, aspect kept."""

from __future__ import annotations

import pytest
from PIL import Image

from thinkedit.tools.config import EditorConfig
from thinkedit.tools.editors.diffusers_engine import DiffusersEditor
from thinkedit.tools.editors.models import EDITOR_MODELS, fit_area, get_model, kontext_resolutions
from thinkedit.tools.types import EditRequest

REAL = sorted(name for name, entry in EDITOR_MODELS.items() if not entry.local)
PHOTOS = [(4000, 3000), (3000, 4000)]

#: What each real model should edit a 4000x3000 photo at, worked out by hand from its rule.
LANDSCAPE = {
    "flux-kontext-dev": (1184, 880),  # Kontext's preferred resolution closest to 4:3
    "qwen-image-edit": (1168, 880),  # sqrt(1024^2 / 12e6) * (4000, 3000), down to multiples of 16
    "qwen-image-edit-plus": (1168, 880),
    "longcat-image-edit": (1168, 880),
    "instruct-pix2pix": (576, 432),  # 512^2's area
}


def test_every_real_entry_declares_its_working_size() -> None:
    assert set(LANDSCAPE) == set(REAL)
    for name in REAL:
        assert EDITOR_MODELS[name].working_area and EDITOR_MODELS[name].working_note


@pytest.mark.parametrize("name", REAL)
@pytest.mark.parametrize("photo", PHOTOS, ids=["4000x3000", "3000x4000"])
def test_working_size_of_a_phone_photo(name: str, photo: tuple[int, int]) -> None:
    entry = get_model(name)
    width, height = entry.working_size(*photo)
    expected = LANDSCAPE[name] if photo[0] > photo[1] else LANDSCAPE[name][::-1]
    assert (width, height) == expected
    assert width % 16 == 0 and height % 16 == 0
    assert width * height <= entry.working_area * 1.02
    assert abs(width / height - photo[0] / photo[1]) < 0.03


@pytest.mark.parametrize("photo", PHOTOS, ids=["4000x3000", "3000x4000"])
def test_real_kontext_keeps_its_own_resizing_on(photo: tuple[int, int]) -> None:
    entry = get_model("flux-kontext-dev")
    size = entry.working_size(*photo)
    assert size in kontext_resolutions()
    kwargs = entry.pipeline_kwargs(entry.resolve(), *size)
    assert kwargs["_auto_resize"] is True and (kwargs["width"], kwargs["height"]) == size
    assert kwargs["max_area"] == size[0] * size[1] and kwargs["num_inference_steps"] == 28


def test_a_profile_can_override_the_working_area() -> None:
    entry = get_model("flux-kontext-dev")
    size = entry.working_size(4000, 3000, area=512 * 512)
    assert size == (576, 432)
    assert entry.pipeline_kwargs({}, *size)["_auto_resize"] is False  # off a preferred size: pinned


@pytest.mark.parametrize("name", REAL)
def test_the_engine_scales_the_input_to_the_working_size(name: str) -> None:
    """No weights needed: the job an edit request becomes holds the working image."""
    editor = DiffusersEditor(EditorConfig(model=name))
    job = editor.check_request(EditRequest(image=Image.new("RGB", (4000, 3000)), instruction="add a hat"))
    assert job.working.size == LANDSCAPE[name] and job.original_size == (4000, 3000)
    small = DiffusersEditor(EditorConfig(model=name, working_area=256 * 256))
    job = small.check_request(EditRequest(image=Image.new("RGB", (3000, 4000)), instruction="add a hat"))
    assert job.working.size == (208, 288)


def test_tiny_entries_keep_the_input_size() -> None:
    editor = DiffusersEditor(EditorConfig(model="tiny-kontext", max_side=256))
    job = editor.check_request(EditRequest(image=Image.new("RGB", (400, 300)), instruction="x"))
    assert job.working.size == (256, 192)


def test_fit_area_never_enlarges_and_keeps_multiples() -> None:
    assert fit_area(300, 200, 1024 * 1024) == (288, 192)
    assert fit_area(10, 5, None) == (16, 16)
