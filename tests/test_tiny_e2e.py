"""The tiny profile end to end through the real diffusers and transformers code, via the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.cli import check_resumed_after_round_1, ROOT, cli_env, edit_killed_at, thinkedit, tiny_profile_that_never_stops_early
from tests.conftest import EXAMPLES
from thinkedit.tools.profiles import DEMO_NOTE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-e2e") / "data"


@pytest.fixture
def unreachable_profile(tmp_path: Path) -> Path:
    """The tiny profile with thresholds a random model never reaches, so runs go the distance."""
    return tiny_profile_that_never_stops_early(tmp_path)


def test_tiny_run_writes_every_output(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = thinkedit("edit", str(EXAMPLES / "chelsea.png"), "put a red party hat on the cat",
                       "--profile", "tiny", "--max-rounds", "3", "--out", str(out), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[1] == DEMO_NOTE  # said right after the run's id: these models make noise
    assert "round 1 · editing" in result.stderr and "round 1 · semantic" in result.stderr
    assert f"report:     {out / 'report.html'}" in result.stdout

    data = json.loads((out / "trajectory.json").read_text())
    assert data["status"] == "done" and data["notes"][0] == DEMO_NOTE
    assert data["stop_reason"] in {"threshold_met", "instruction_unchanged", "max_rounds"}
    assert 1 <= len(data["rounds"]) <= 3
    for r in data["rounds"]:
        assert 0 <= r["semantic"] <= 10 and 0 <= r["quality"] <= 10
        assert r["edit_seconds"] > 0 and r["think_seconds"] > 0
        assert (out / f"round-{r['index']}.png").is_file()
    final = Image.open(out / "final.png")
    assert final.size == Image.open(EXAMPLES / "chelsea.png").size
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 1 + len(data["rounds"])


def test_sigkill_then_resume_does_not_redo_finished_rounds(data_dir: Path, tmp_path: Path, unreachable_profile: Path) -> None:
    out = tmp_path / "out"
    run_id, _ = edit_killed_at("round 2 · editing", str(EXAMPLES / "coffee.png"), "make the coffee green",
                               "--profile", str(unreachable_profile), "--max-rounds", "3", "--out", str(out),
                               data_dir=data_dir)

    listing = thinkedit("runs", data_dir=data_dir)
    assert any(line.startswith(run_id) and "running" in line for line in listing.stdout.splitlines())

    resumed = thinkedit("resume", run_id, data_dir=data_dir)
    check_resumed_after_round_1(resumed, out)
    listing = thinkedit("runs", data_dir=data_dir)
    assert any(line.startswith(run_id) and "done" in line for line in listing.stdout.splitlines())


def test_tiny_pix2pix_editor_runs_the_loop(data_dir: Path, tmp_path: Path) -> None:
    env_result = subprocess.run(
        [sys.executable, "-m", "thinkedit.servers.cli", "edit", str(EXAMPLES / "astronaut.png"), "make the suit blue",
         "--profile", "tiny", "--max-rounds", "2", "--out", str(tmp_path / "o")],
        cwd=ROOT, env={**cli_env(data_dir), "THINKEDIT_EDITOR_MODEL": "tiny-pix2pix"},
        capture_output=True, text=True, timeout=300,
    )
    assert env_result.returncode == 0, env_result.stderr
    assert Image.open(tmp_path / "o" / "final.png").size == (512, 512)


def test_review_in_the_terminal(data_dir: Path, tmp_path: Path, unreachable_profile: Path) -> None:
    out = tmp_path / "out"
    result = thinkedit("edit", str(EXAMPLES / "chelsea.png"), "put a red party hat on the cat", "--review",
                       "--profile", str(unreachable_profile), "--max-rounds", "5", "--out", str(out),
                       data_dir=data_dir, input="approve\na tall red hat\nstop\n")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("proposed instruction:") == 3
    data = json.loads((out / "trajectory.json").read_text())
    assert data["stop_reason"] == "reviewer_stopped"
    assert len(data["rounds"]) == 3
    assert data["rounds"][1]["instruction"] == data["rounds"][0]["refined_instruction"]  # approved
    assert data["rounds"][2]["instruction"] == "a tall red hat"  # replaced


def test_data_dir_option_is_where_the_tiny_models_are_built(tmp_path: Path) -> None:
    env_dir, option_dir = tmp_path / "from-env", tmp_path / "from-option"
    result = thinkedit("edit", str(EXAMPLES / "chelsea.png"), "add a hat", "--profile", "tiny", "--max-rounds", "1",
                       "--out", str(tmp_path / "out"), "--data-dir", str(option_dir), data_dir=env_dir)
    assert result.returncode == 0, result.stderr
    assert (option_dir / "models" / "tiny-kontext" / ".thinkedit-ready").is_file()
    assert (option_dir / "models" / "tiny-qwen2.5-vl" / ".thinkedit-ready").is_file()
    assert not env_dir.exists()
