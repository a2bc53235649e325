"""``thinkedit models``: every editor and thinker with defaults, settings and working size, as text and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import thinkedit
from thinkedit.tools.editors.models import EDITOR_MODELS

pytestmark = pytest.mark.slow  # a CLI process that imports diffusers


def test_models_lists_every_editor_and_thinker(tmp_path: Path) -> None:
    result = thinkedit("models", "--json", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    editors = {e["name"]: e for e in data["editors"]}
    assert set(editors) == set(EDITOR_MODELS)
    kontext = editors["flux-kontext-dev"]
    assert kontext["working_area"] == 1024 * 1024 and kontext["working_size_for_4000x3000"] == [1184, 880]
    assert kontext["defaults"] == {"num_inference_steps": 28, "guidance_scale": 2.5}
    assert kontext["settings"]["num_inference_steps"]["max"] == 500 and "kontext" in kontext["profiles"]
    assert editors["instruct-pix2pix"]["working_size_for_4000x3000"] == [576, 432]
    assert editors["tiny-kontext"]["working_area"] is None
    thinkers = {t["name"]: t for t in data["thinkers"]}
    assert {"appletea2333/EditThinker-8B", "tiny-qwen2.5-vl", "gpt-4.1"} <= set(thinkers)
    assert thinkers["gpt-4.1"]["protocol"] == "expert" and "prompt_file" in thinkers["gpt-4.1"]["settings"]

    text = thinkedit("models", data_dir=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "flux-kontext-dev" in text.stdout and "a 4000x3000 photo is edited at 1184x880" in text.stdout
    assert "appletea2333/EditThinker-8B" in text.stdout
