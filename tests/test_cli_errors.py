"""The CLI rejects bad usage and bad input with exit code 2 and a message naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import thinkedit
from tests.conftest import EXAMPLES


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture")
    data = (EXAMPLES / "chelsea.png").read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(data[: len(data) // 3])
    return {"text": text, "truncated": truncated}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["edit", "no/such/photo.png", "make it red"], "image not found: no/such/photo.png"),
        (["edit", "{text}", "make it red"], "is not an image"),
        (["edit", "{truncated}", "make it red"], "damaged or truncated"),
        (["edit", "examples/chelsea.png", "   "], "instruction is empty"),
        (["edit", "examples/chelsea.png", "make it red", "--max-rounds", "0"], "--max-rounds: must be at least 1"),
        (["edit", "examples/chelsea.png", "make it red", "--max-rounds", "two"], "is not a whole number"),
        (["edit", "examples/chelsea.png", "make it red", "--profile", "nope"], "unknown profile 'nope'"),
        (["edit", "examples/chelsea.png", "make it red", "--select", "worst"], "invalid choice: 'worst'"),
        (["resume", "doesnotexist"], "unknown run id 'doesnotexist'"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_message(tmp_path: Path, bad_files: dict[str, Path], args: list[str], message: str) -> None:
    args = [a.format(**bad_files) for a in args]
    result = thinkedit(*args, data_dir=tmp_path / "data", timeout=60)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_runs_lists_nothing_on_a_fresh_data_dir(tmp_path: Path) -> None:
    result = thinkedit("runs", data_dir=tmp_path / "data", timeout=60)
    assert result.returncode == 0
    assert "no runs" in result.stdout
