"""Check the transformers thinker's cheap parts: construction, validation and lazy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from thinkedit.tools.config import ThinkerConfig
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.thinkers.transformers_vlm import TransformersThinker

ROOT = Path(__file__).resolve().parents[1]


def test_construction_is_lazy_and_light() -> None:
    code = (
        "import sys\n"
        "from thinkedit.tools.config import ThinkerConfig\n"
        "from thinkedit.tools.thinkers.transformers_vlm import TransformersThinker\n"
        "t = TransformersThinker(ThinkerConfig(model='appletea2333/EditThinker-8B', constrained=True))\n"
        "assert t.name == 'appletea2333/EditThinker-8B'\n"
        "assert t.runtime.model_source() == 'appletea2333/EditThinker-8B'\n"
        "heavy = [m for m in ('torch', 'transformers', 'xgrammar') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_too_small_budget_for_constrained_output_fails_at_construction() -> None:
    with pytest.raises(BadInputError, match="max_new_tokens"):
        TransformersThinker(ThinkerConfig(model="tiny-qwen2.5-vl", constrained=True, max_new_tokens=32))
    TransformersThinker(ThinkerConfig(model="tiny-qwen2.5-vl", constrained=False, max_new_tokens=32))


def test_missing_prompt_file_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not found"):
        TransformersThinker(ThinkerConfig(model="tiny-qwen2.5-vl", prompt_file=str(tmp_path / "nope.txt")))


def test_unknown_tiny_model_is_a_clear_error(tmp_path: Path) -> None:
    thinker = TransformersThinker(ThinkerConfig(model="tiny-nonesuch"), data_dir=tmp_path)
    with pytest.raises(BadInputError, match="tiny-qwen2.5-vl"):
        thinker.runtime.model_source()
