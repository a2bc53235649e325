"""``thinkedit eval`` and ``thinkedit data`` reject bad usage with exit code 2 and a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from thinkedit.apps.evaluation.synthetic import write_synthetic_benchmark
from tests.cli import thinkedit
from tests.conftest import EXAMPLES


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{missing}", "--judge", "tiny"], "not found"),
        (["--data", "{bench}", "--judge", "no-such-profile"], "unknown profile"),
        (["--data", "{bench}", "--judge", "tiny", "--concurrency", "0"], "at least 1"),
        (["--data", "{bench}", "--judge", "tiny", "--task-type", "nothing-like-this"], "no imgedit items"),
        (["--data", "{bench}", "--judge", "tiny", "--judge-prompt", "{missing}"], "judge prompt not found"),
        (["--data", "{bench}"], "--judge"),
    ],
)
def test_eval_usage_errors(args: list[str], message: str, tmp_path: Path) -> None:
    bench = write_synthetic_benchmark(tmp_path / "bench", examples_dir=EXAMPLES)
    filled = [a.format(missing=tmp_path / "missing", bench=bench) for a in args]
    result = thinkedit("eval", "--bench", "imgedit", *filled, "--out", str(tmp_path / "out"), data_dir=tmp_path / "d")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_data_usage_errors(tmp_path: Path) -> None:
    missing = thinkedit("data", "build", "--from", str(tmp_path / "nothing"), "--out", str(tmp_path / "o"),
                        data_dir=tmp_path / "d")
    assert missing.returncode == 2 and "not found" in missing.stderr
    layout = thinkedit("data", "synthetic-bench", "--out", str(tmp_path / "b"), "--images", str(tmp_path),
                       data_dir=tmp_path / "d")
    assert layout.returncode == 2 and "example photos not found" in layout.stderr
