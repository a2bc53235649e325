"""The tiny profile end to end through the CLI: eval a synthetic benchmark (killed and rerun), record, build data."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from thinkedit.apps.dataset.rules import construct
from thinkedit.agent.recording import read_trajectories
from tests.cli import ROOT, cli_env, thinkedit
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("eval-e2e") / "data"


def keys(path: Path) -> list[str]:
    if not path.is_file():
        return []
    return [json.loads(line)["key"] for line in path.read_text().splitlines() if line.endswith("}")]


def test_eval_runs_the_synthetic_benchmark_resumes_after_a_kill_and_prints_the_table(data_dir: Path, tmp_path: Path) -> None:
    bench, out, record = tmp_path / "bench", tmp_path / "out", tmp_path / "recorded"
    made = thinkedit("data", "synthetic-bench", "--out", str(bench), "--layout", "imgedit", data_dir=data_dir)
    assert made.returncode == 0, made.stderr
    args = ["eval", "--bench", "imgedit", "--data", str(bench), "--profile", "tiny", "--judge", "tiny",
            "--max-rounds", "2", "--limit", "4", "--out", str(out), "--record", str(record)]

    proc = subprocess.Popen([sys.executable, "-m", "thinkedit.servers.cli", *args], cwd=ROOT, env=cli_env(data_dir),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    loop_file = out / "imgedit-loop.jsonl"
    deadline = time.monotonic() + 240
    while not keys(loop_file) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    before = keys(loop_file)
    assert 1 <= len(before) < 4, "the first run should be killed after its first item"

    rerun = thinkedit(*args, data_dir=data_dir)
    assert rerun.returncode == 0, rerun.stderr
    assert sum(line.startswith("skip ") for line in rerun.stderr.splitlines()) == len(before)
    assert sum(line.startswith("done ") for line in rerun.stderr.splitlines()) == 4 - len(before)
    assert sorted(keys(loop_file)) == sorted(keys(out / "imgedit-single.jsonl")) == ["1", "2", "3", "4"]
    assert "| task type | items | single SC |" in rerun.stdout and "| **all** | **4** |" in rerun.stdout
    for name in ("summary-imgedit.md", "summary-imgedit.csv", "plot-imgedit.png", "judge-prompt-imgedit.txt",
                 "plots/imgedit-add.png", "outputs/single/1.png", "outputs/loop/4.png"):
        assert (out / name).is_file(), name
    recorded = [data for _, data in read_trajectories(record)]
    assert sorted(t["item_key"] for t in recorded) == ["1", "2", "3", "4"]
    assert {t["thinker"]["model"] for t in recorded} == {"tiny-qwen2.5-vl"}

    # Other settings into the same output directory are refused.
    clash = thinkedit(*[a if a != "2" else "3" for a in args], data_dir=data_dir)
    assert clash.returncode == 2 and "other settings" in clash.stderr


def test_recorded_tiny_edits_become_training_data_that_follows_the_rules(data_dir: Path, tmp_path: Path) -> None:
    record, out = tmp_path / "recorded", tmp_path / "dataset"
    profile = tmp_path / "tiny-long.toml"  # thresholds a random model never reaches: runs go the distance
    profile.write_text((ROOT / "tools/profiles/tiny.toml").read_text().replace(
        "[loop]\n", "[loop]\nsemantic_threshold = 10\nquality_threshold = 10\n"))
    for seed, photo, instruction, task in [(2, "coffee.png", "make the coffee cup blue", "alter"),
                                           (0, "chelsea.png", "put a red party hat on the cat", "add")]:
        result = thinkedit("edit", str(EXAMPLES / photo), instruction, "--profile", str(profile), "--seed", str(seed),
                           "--max-rounds", "3", "--out", str(tmp_path / f"o{seed}"), "--record", str(record),
                           "--task-type", task, data_dir=data_dir)
        assert result.returncode == 0, result.stderr
        assert "recorded:" in result.stdout
    trajectories = [data for _, data in read_trajectories(record)]
    assert sorted(t["task_type"] for t in trajectories) == ["add", "alter"]
    assert all(len(t["rounds"]) == 3 and (record / t["id"] / "round-3.png").is_file() for t in trajectories)

    built = thinkedit("data", "build", "--from", str(record), "--out", str(out), "--rl-fraction", "0",
                      "--max-per-task", "100", data_dir=data_dir)
    assert built.returncode == 0, built.stderr
    expected, _ = construct(trajectories)
    assert expected, "these tiny runs should hold an improving trajectory"
    sft = [json.loads(line) for line in (out / "sft.jsonl").read_text().splitlines()]
    assert len(sft) == len(expected)
    by_traj = {t["id"]: t for t in trajectories}
    for sample, record_line in zip(expected, sft, strict=True):
        scores = [r["overall"] for r in by_traj[sample["trajectory"]]["rounds"]]
        k = 2 + scores[1:].index(max(scores[1:]))
        assert max(scores[1:]) >= scores[0] and sample["step"] < k  # runs hit max_rounds: no stop sample
        user, assistant = record_line["messages"]
        assert sample["original_instruction"] in user["content"] and sample["previous_instruction"] in user["content"]
        assert assistant["content"].endswith(f"<answer>{sample['refined_instruction'].strip()}</answer>")
        assert record_line["images"] == [f"images/{sample['trajectory']}/source.png",
                                         f"images/{sample['trajectory']}/round-{sample['step']}.png"]
        assert all((out / p).is_file() for p in record_line["images"])
