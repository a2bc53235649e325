"""Check the diffusers editor table, settings validation and request checks (fast: no torch work)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from thinkedit.tools.config import EditorConfig
from thinkedit.tools.editors.diffusers_engine import MAX_IMAGES_PER_REQUEST, chunked, group_by, prepare_job, units_of
from thinkedit.tools.editors.models import EDITOR_MODELS, get_model
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.types import EditRequest

REPO = Path(__file__).resolve().parents[1]

# name: (pipeline class, hub id, defaults) as DESIGN §2 gives them.
EXPECTED = {
    "flux-kontext-dev": (
        "FluxKontextPipeline",
        "black-forest-labs/FLUX.1-Kontext-dev",
        {"num_inference_steps": 28, "guidance_scale": 2.5},
    ),
    "qwen-image-edit": (
        "QwenImageEditPipeline",
        "Qwen/Qwen-Image-Edit",
        {"num_inference_steps": 50, "true_cfg_scale": 4.0, "negative_prompt": " "},
    ),
    "qwen-image-edit-plus": (
        "QwenImageEditPlusPipeline",
        "Qwen/Qwen-Image-Edit-2509",
        {"num_inference_steps": 50, "true_cfg_scale": 4.0, "negative_prompt": " "},
    ),
    "longcat-image-edit": (
        "LongCatImageEditPipeline",
        "meituan-longcat/LongCat-Image-Edit",
        {"num_inference_steps": 50, "guidance_scale": 4.5},
    ),
    "instruct-pix2pix": (
        "StableDiffusionInstructPix2PixPipeline",
        "timbrooks/instruct-pix2pix",
        {"num_inference_steps": 50, "guidance_scale": 7.5, "image_guidance_scale": 1.5},
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_entry_matches_the_paper(name: str) -> None:
    entry = get_model(name)
    pipeline_class, hub_id, defaults = EXPECTED[name]
    assert (entry.name, entry.pipeline_class, entry.hub_id) == (name, pipeline_class, hub_id)
    assert dict(entry.defaults) == defaults
    assert not entry.local


def test_gpu_dtypes() -> None:
    assert get_model("instruct-pix2pix").dtype == "float16"
    assert {get_model(n).dtype for n in ("flux-kontext-dev", "qwen-image-edit", "longcat-image-edit")} == {"bfloat16"}


@pytest.mark.parametrize(("tiny", "real"), [("tiny-kontext", "flux-kontext-dev"), ("tiny-pix2pix", "instruct-pix2pix")])
def test_tiny_entries_use_the_real_pipelines(tiny: str, real: str) -> None:
    entry, original = get_model(tiny), get_model(real)
    assert entry.local and entry.hub_id is None
    assert entry.pipeline_class == original.pipeline_class
    assert set(entry.settings) == set(original.settings)
    assert 1 <= entry.defaults["num_inference_steps"] <= 4


def test_every_default_passes_its_own_validation() -> None:
    for entry in EDITOR_MODELS.values():
        assert entry.check_settings(entry.defaults) == dict(entry.defaults), entry.name


def test_setting_names_follow_the_server_vocabulary() -> None:
    allowed = {"num_inference_steps", "guidance_scale", "true_cfg_scale", "image_guidance_scale", "negative_prompt"}
    for entry in EDITOR_MODELS.values():
        assert set(entry.settings) <= allowed, entry.name


def test_misspelt_setting_is_named_with_the_valid_ones() -> None:
    with pytest.raises(BadInputError) as info:
        get_model("flux-kontext-dev").check_settings({"guidance": 3.0})
    message = str(info.value)
    assert "'guidance'" in message and "guidance_scale" in message and "num_inference_steps" in message


def test_setting_of_another_model_is_unknown() -> None:
    with pytest.raises(BadInputError, match="image_guidance_scale"):
        get_model("qwen-image-edit").check_settings({"image_guidance_scale": 1.5})


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"num_inference_steps": 0}, "between"),
        ({"num_inference_steps": 10_000}, "between"),
        ({"num_inference_steps": 2.5}, "whole number"),
        ({"num_inference_steps": "28"}, "must be a number"),
        ({"num_inference_steps": True}, "must be a number"),
        ({"guidance_scale": -1.0}, "between"),
        ({"guidance_scale": float("nan")}, "finite"),
        ({"negative_prompt": 3}, "must be a string"),
        ({"negative_prompt": "x" * 5000}, "longer than"),
    ],
)
def test_wrong_type_or_range_is_rejected(settings: dict, fragment: str) -> None:
    key = next(iter(settings))
    with pytest.raises(BadInputError, match=fragment) as info:
        get_model("instruct-pix2pix").check_settings(settings)
    assert repr(key) in str(info.value)


def test_values_are_coerced() -> None:
    checked = get_model("flux-kontext-dev").check_settings({"num_inference_steps": 20.0, "guidance_scale": 3})
    assert checked == {"num_inference_steps": 20, "guidance_scale": 3.0}
    assert isinstance(checked["num_inference_steps"], int) and isinstance(checked["guidance_scale"], float)


def test_later_overrides_win() -> None:
    entry = get_model("instruct-pix2pix")
    resolved = entry.resolve({"num_inference_steps": 20}, {"num_inference_steps": 30, "guidance_scale": 5})
    assert resolved == {"num_inference_steps": 30, "guidance_scale": 5.0, "image_guidance_scale": 1.5}


def test_kontext_kwargs_pin_the_working_size() -> None:
    kwargs = get_model("tiny-kontext").pipeline_kwargs({"guidance_scale": 2.5}, 448, 288)
    assert kwargs == {
        "max_sequence_length": 77,
        "height": 288,
        "width": 448,
        "max_area": 448 * 288,
        "_auto_resize": False,
        "guidance_scale": 2.5,
    }


@pytest.mark.parametrize("name", ["flux-kontext-dev", "qwen-image-edit"])
def test_max_side_bounds_the_working_size_too(name: str) -> None:
    """Kontext's preferred ~1 MP sizes do not scale an input bounded by max_side back up."""
    model, photo = get_model(name), Image.new("RGB", (2000, 1500))
    request = EditRequest(image=photo, instruction="x", seed=0)
    assert prepare_job(0, request, model, {}, max_side=512).working.size == (512, 384)
    assert prepare_job(0, request, model, {}, max_side=None).working.size == (1184, 880)  # the model's own


def test_pix2pix_kwargs_take_size_from_the_image() -> None:
    assert get_model("instruct-pix2pix").pipeline_kwargs({"num_inference_steps": 5}, 64, 64) == {
        "num_inference_steps": 5
    }


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(BadInputError, match="tiny-kontext"):
        get_model("flux-kontekst")


def _request(**overrides: object) -> EditRequest:
    fields: dict = {"image": Image.new("RGB", (451, 300)), "instruction": "add a hat", "seed": 3}
    fields.update(overrides)
    return EditRequest(**fields)


def test_prepare_job_crops_and_merges_settings() -> None:
    entry = get_model("tiny-pix2pix")
    job = prepare_job(0, _request(settings={"guidance_scale": 5}), entry, entry.resolve(), 256)
    assert job.original_size == (451, 300)
    assert job.working.width <= 256 and job.working.width % 16 == 0 and job.working.height % 16 == 0
    assert job.settings["guidance_scale"] == 5.0 and job.settings["image_guidance_scale"] == 1.5
    assert [u.seed for u in units_of(prepare_job(0, _request(num_images=3), entry, {}, None))] == [3, 4, 5]


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"instruction": "  "}, "instruction"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"num_images": 0}, "num_images"),
        ({"num_images": MAX_IMAGES_PER_REQUEST + 1}, "num_images"),
        ({"settings": {"steps": 4}}, "'steps'"),
        ({"image": b"not an image"}, "PIL image"),
    ],
)
def test_bad_requests_are_rejected(overrides: dict, fragment: str) -> None:
    entry = get_model("tiny-kontext")
    with pytest.raises(BadInputError, match=fragment):
        prepare_job(0, _request(**overrides), entry, {}, None)


def test_grouping_keeps_order_and_chunks() -> None:
    assert group_by([1, 2, 3, 4, 5], lambda n: n % 2) == [[1, 3, 5], [2, 4]]
    assert chunked([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]


def test_editor_checks_settings_eagerly_without_loading_torch() -> None:
    """Build editors in a fresh interpreter: bad settings fail at once, and nothing heavy is imported."""
    code = (
        "import sys\n"
        "from thinkedit.tools.config import EditorConfig\n"
        "from thinkedit.tools.errors import BadInputError\n"
        "from thinkedit.tools.registry import EDITOR_BACKENDS, _factory\n"
        "cls = _factory(EDITOR_BACKENDS, 'editor', 'diffusers')\n"
        "editor = cls(EditorConfig(model='flux-kontext-dev', settings={'guidance_scale': 3}))\n"
        "assert editor.name == 'flux-kontext-dev' and editor.settings['guidance_scale'] == 3.0\n"
        "try:\n"
        "    cls(EditorConfig(model='tiny-kontext', settings={'guidence_scale': 3}))\n"
        "except BadInputError as exc:\n"
        "    assert 'guidence_scale' in str(exc)\n"
        "else:\n"
        "    raise SystemExit('bad setting accepted')\n"
        "heavy = sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={"PYTHONPATH": str(REPO)}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_editor_config_settings_are_validated_like_requests() -> None:
    from thinkedit.tools.editors.diffusers_engine import DiffusersEditor

    with pytest.raises(BadInputError, match="between"):
        DiffusersEditor(EditorConfig(model="instruct-pix2pix", settings={"image_guidance_scale": -2}))
    with pytest.raises(BadInputError, match="max_batch_images"):
        DiffusersEditor(EditorConfig(model="instruct-pix2pix"), max_batch_images=0)
