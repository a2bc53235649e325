"""Settings this machine cannot honour are refused before any run exists: one line, naming the setting, exit 2."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli import ROOT, thinkedit
from thinkedit.agent.settings_check import data_dir_problem, device_problem, local_path_problem

CHELSEA = str(ROOT / "examples" / "chelsea.png")

#: (environment, the name the one line must carry, what it must say)
BAD_SETTINGS = [
    ({"THINKEDIT_DATA_DIR": "/dev/null"}, "$THINKEDIT_DATA_DIR", "is not a directory"),
    ({"THINKEDIT_EDITOR_DEVICE": "quantum"}, "$THINKEDIT_EDITOR_DEVICE", "is not a device"),
    ({"THINKEDIT_THINKER_DEVICE": "cuda:99"}, "$THINKEDIT_THINKER_DEVICE", "is not available"),
    ({"THINKEDIT_EDITOR_PATH": "/nonexistent"}, "$THINKEDIT_EDITOR_PATH", "does not exist"),
    ({"THINKEDIT_EDITOR_URL": "not-a-url"}, "$THINKEDIT_EDITOR_URL", "is not an http(s) URL"),
    ({"THINKEDIT_THINKER_URL": "ftp://127.0.0.1/v1"}, "$THINKEDIT_THINKER_URL", "is not an http(s) URL"),
    ({"THINKEDIT_THINKER_PROMPT_FILE": "/nonexistent/prompt.txt"}, "$THINKEDIT_THINKER_PROMPT_FILE", "is not a file"),
]


def refused(result, name: str, says: str) -> None:
    """Check a refusal: exit 2 and exactly one stderr line naming the setting and the problem."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("thinkedit: error: ") and name in lines[0] and says in lines[0], lines[0]


@pytest.mark.parametrize(("env", "name", "says"), BAD_SETTINGS, ids=[next(iter(e)) for e, _, _ in BAD_SETTINGS])
def test_edit_refuses_a_bad_setting_before_the_run_exists(tmp_path: Path, env: dict[str, str], name: str, says: str) -> None:
    data = tmp_path / "data"
    result = thinkedit("edit", CHELSEA, "put a hat on the cat", "--max-rounds", "1", "--out", str(tmp_path / "out"),
                       data_dir=data, env=env, cwd=tmp_path, timeout=120)
    refused(result, name, says)
    assert not (data / "runs").exists() and not (tmp_path / "out").exists()  # no run record, no outputs


def test_ui_names_an_unknown_profile_in_one_line(tmp_path: Path) -> None:
    result = thinkedit("ui", "--profile", "nope", "--port", "0", data_dir=tmp_path / "data", timeout=120)
    refused(result, "unknown profile 'nope'", "choose from")


@pytest.mark.parametrize("command", [["ui", "--port", "0"], ["serve", "mcp"], ["serve", "mcp", "--transport", "http", "--port", "0"]])
def test_servers_refuse_a_bad_setting_before_serving(tmp_path: Path, command: list[str]) -> None:
    result = thinkedit(*command, data_dir=tmp_path / "data", env={"THINKEDIT_EDITOR_DEVICE": "quantum"},
                       timeout=120, stdin=subprocess.DEVNULL)
    refused(result, "$THINKEDIT_EDITOR_DEVICE", "is not a device")
    assert not (tmp_path / "data" / "runs").exists()


def test_eval_refuses_a_bad_setting_before_reading_the_benchmark(tmp_path: Path) -> None:
    result = thinkedit("eval", "--bench", "gedit", "--data", str(tmp_path / "bench"), "--judge", "tiny",
                       "--out", str(tmp_path / "eval"), data_dir=tmp_path / "data", env={"THINKEDIT_EDITOR_URL": "not-a-url"},
                       cwd=tmp_path, timeout=120)
    refused(result, "$THINKEDIT_EDITOR_URL", "is not an http(s) URL")
    assert not (tmp_path / "eval").exists() and not (tmp_path / "data" / "runs").exists()


@pytest.mark.parametrize(
    ("device", "problem"),
    [("cpu", None), ("CPU", None), ("cpu:1", "is not a device"), ("quantum", "is not a device"),
     ("cuda:x", "is not a device"), ("", "is not a device")],
)
def test_device_names(device: str, problem: str | None) -> None:
    found = device_problem(device)
    assert found == problem if problem is None else problem in (found or "")


def test_accelerators_this_machine_lacks_are_unavailable() -> None:
    import torch

    if not torch.cuda.is_available():
        assert "no CUDA device" in (device_problem("cuda") or "")
    assert "is not available" in (device_problem(f"cuda:{torch.cuda.device_count() + 1}") or "")


def test_paths_and_data_dirs(tmp_path: Path) -> None:
    assert local_path_problem("black-forest-labs/FLUX.1-Kontext-dev") is None  # a hub id
    assert local_path_problem(str(tmp_path)) is None
    assert local_path_problem(str(tmp_path / "missing")) == "does not exist"
    assert data_dir_problem(str(tmp_path / "new" / "data")) is None  # created on first use
    (tmp_path / "file").write_text("x")
    assert data_dir_problem(str(tmp_path / "file")) == "is not a directory"
    assert "is not a directory" in (data_dir_problem(str(tmp_path / "file" / "data")) or "")
