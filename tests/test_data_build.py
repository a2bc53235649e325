"""``thinkedit data build`` on hand-built recorded trajectories: files, images, report, determinism."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from thinkedit.apps.dataset.build import build_dataset
from thinkedit.agent.recording import FORMAT, read_trajectories
from tests.cli import thinkedit
from tests.test_data_rules import traj
from thinkedit.tools.errors import BadInputError


def write_trajectory(root: Path, data: dict) -> Path:
    folder = root / data["id"]
    folder.mkdir(parents=True)
    Image.new("RGB", (32, 32), (10, 20, 30)).save(folder / "source.png")
    for r in data["rounds"]:
        Image.new("RGB", (32, 32), (r["index"] * 40, 0, 0)).save(folder / r["image"])
    (folder / "trajectory.json").write_text(json.dumps({"format": FORMAT, **data}))
    return folder


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    root = tmp_path / "recorded"
    for i in range(4):
        write_trajectory(root, traj(f"add{i}", [3, 4 + i, 2], task="add"))  # kept, cut at round 2: 1 sample each
    write_trajectory(root, traj("style0", [2, 9], task="style", stop="threshold_met"))  # kept with its stop sample
    write_trajectory(root, traj("style1", [6, 5], task="style"))  # dropped: no improvement
    write_trajectory(root, traj("remove0", [7], task="remove"))  # dropped: one round
    (root / ".half-written").mkdir()  # a recording in progress is invisible
    return root


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_build_writes_sft_and_rl_files_that_follow_the_rules(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    report = build_dataset(recorded, out, rl_fraction=0.25, seed=0, max_per_task=10)
    assert report["trajectories"] == 7 and report["kept_trajectories"] == 4 + 1
    assert report["dropped_trajectories"] == {"no_improvement": 1, "single_round": 1}
    assert report["unrolled_samples"] == 4 + 2 == report["balanced_samples"]
    sft, rl = lines(out / "sft.jsonl"), lines(out / "rl.jsonl")
    assert len(sft) + len(rl) == 6
    assert len({r["trajectory"] for r in rl}) == 1  # round(0.25 * 4) add trajectories, round(0.25 * 1) style ones
    for record in sft:
        assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
        assert record["messages"][0]["content"].count("<image>") == len(record["images"]) == 2
        assert all((out / path).is_file() for path in record["images"])
        assert record["images"][0].endswith("source.png")
    answers = {r["messages"][1]["content"] for r in sft} | {r["answer"] for r in rl}
    assert '<think>reasoning 2</think><score>{"semantic": 9, "quality": 9}</score><answer>instruction 3</answer>' in answers
    for record in rl:
        assert record["next"] is None or (out / record["next"]["image"]).is_file()
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["thinkedit_sft"]["file_name"] == "sft.jsonl" and info["thinkedit_sft"]["formatting"] == "sharegpt"


def test_build_is_deterministic_for_a_seed_and_rebuilds_in_place(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    build_dataset(recorded, out, rl_fraction=0.5, seed=4)
    first = ((out / "sft.jsonl").read_text(), (out / "rl.jsonl").read_text())
    build_dataset(recorded, out, rl_fraction=0.5, seed=4)
    assert ((out / "sft.jsonl").read_text(), (out / "rl.jsonl").read_text()) == first
    # The default cap is the median samples per task type: add has 4, style 2 -> 3 for add.
    report = json.loads((out / "build-report.json").read_text())
    assert report["balanced_samples"] == 3 + 2
    assert sum(report["balanced_by_task_and_score"]["add"].values()) == 3


def test_build_refuses_a_foreign_non_empty_directory(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(BadInputError, match="not empty"):
        build_dataset(recorded, out)
    assert (out / "notes.txt").read_text() == "keep me"


def test_read_trajectories_skips_foreign_and_damaged_files(tmp_path: Path) -> None:
    write_trajectory(tmp_path, traj("good", [1, 2]))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "trajectory.json").write_text("{not json")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "trajectory.json").write_text(json.dumps({"format": "something-else"}))
    skipped = []
    found = [data["id"] for _, data in read_trajectories(tmp_path, on_skip=lambda *skip: skipped.append(skip[:2]))]
    assert found == ["good"]
    assert skipped == [(tmp_path / "bad" / "trajectory.json", "unreadable"),
                       (tmp_path / "other" / "trajectory.json", "wrong_format")]


def test_cli_data_build(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-dataset"
    result = thinkedit("data", "build", "--from", str(recorded), "--out", str(out), "--rl-fraction", "0", "--seed", "1",
                       data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert "7 found, 5 kept (dropped: no_improvement 1, single_round 1)" in result.stdout
    assert "rl:           0" in result.stdout
    assert len(lines(out / "sft.jsonl")) == 5  # 3 add (median cap) + 2 style
    bad = thinkedit("data", "build", "--from", str(recorded), "--out", str(out), "--rl-fraction", "2", data_dir=tmp_path / "data")
    assert bad.returncode == 2 and "rl-fraction" in bad.stderr


@pytest.mark.parametrize(
    ("name", "reason", "content"),
    [
        ("wrong-types", "malformed", lambda good: json.dumps({**good, "rounds": "abc"}).encode()),
        ("wrong-round", "malformed",
         lambda good: json.dumps({**good, "rounds": [{**good["rounds"][0], "overall": "high"}]}).encode()),
        ("thinker-text", "malformed", lambda good: json.dumps({**good, "thinker": "expert-x"}).encode()),
        ("other-format", "wrong_format", lambda good: json.dumps({**good, "format": "something-else"}).encode()),
        ("deep", "unreadable", lambda good: b"[" * 100_000 + b"]" * 100_000),
        ("bad-utf8", "unreadable", lambda good: b'{"format": "' + b"\xff\xfe" + b'"}'),
    ],
)
def test_cli_data_build_skips_a_bad_file_naming_and_counting_it(
    recorded: Path, tmp_path: Path, name: str, reason: str, content
) -> None:
    good = json.loads((recorded / "add0" / "trajectory.json").read_text())
    bad = write_trajectory(recorded, {**traj(name, [1, 2]), "id": name}) / "trajectory.json"
    bad.write_bytes(content(good))
    out = tmp_path / "dataset"
    result = thinkedit("data", "build", "--from", str(recorded), "--out", str(out), "--rl-fraction", "0",
                       data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr
    warning = [line for line in result.stderr.splitlines() if str(bad) in line]
    assert len(warning) == 1 and "skipping" in warning[0] and reason in warning[0], result.stderr
    # The other trajectories were built, and the summary counts the skipped file among the dropped.
    dropped = ", ".join(f"{k} {v}" for k, v in sorted({"no_improvement": 1, "single_round": 1, reason: 1}.items()))
    assert f"8 found, 5 kept (dropped: {dropped})" in result.stdout
    report = json.loads((out / "build-report.json").read_text())
    assert report["trajectories"] == 8 and report["kept_trajectories"] == 5
    assert report["dropped_trajectories"][reason] == 1
    assert [(s["file"], s["reason"]) for s in report["skipped_files"]] == [(f"{name}/trajectory.json", reason)]


def test_build_refuses_an_image_that_links_out_of_its_trajectory(recorded: Path, tmp_path: Path) -> None:
    """A shared recording is an archive, and an archive keeps links: one to a local file must not be copied in."""
    secret = tmp_path / "secret.png"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(secret)  # an image, so only where it lies gives it away
    sources = sorted(recorded.glob("*/source.png"))
    for source in sources:
        source.unlink()
        source.symlink_to(secret)
    with pytest.raises(BadInputError, match=r"source.png in .* is a link to .*secret.png, outside"):
        build_dataset(recorded, tmp_path / "dataset", rl_fraction=0.0, seed=0)
    assert all(p.read_bytes() != secret.read_bytes() for p in (tmp_path / "dataset").rglob("*.png"))
    for source in sources:  # a link inside its trajectory's folder is that trajectory's own file
        source.unlink()
        source.symlink_to(source.parent / "round-1.png")
    assert build_dataset(recorded, tmp_path / "again", rl_fraction=0.0, seed=0)["sft_samples"]


def build_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_a_failed_rebuild_leaves_the_earlier_build_whole(recorded: Path, tmp_path: Path) -> None:
    """A missing image is found before anything is written, so the earlier build and its images stay usable."""
    out = tmp_path / "dataset"
    build_dataset(recorded, out, rl_fraction=0.0, seed=0)
    before = build_files(out)
    (recorded / "style0" / "round-1.png").unlink()
    with pytest.raises(BadInputError, match=r"round-1.png in .*style0 is not a file"):
        build_dataset(recorded, out, rl_fraction=0.0, seed=0)
    assert build_files(out) == before
    assert all((out / path).is_file() for record in lines(out / "sft.jsonl") for path in record["images"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset", "recorded"]
    (tmp_path / "plain").mkdir()  # a folder made as any other: the build's folder is not made private
    assert (out.stat().st_mode & 0o777) == ((tmp_path / "plain").stat().st_mode & 0o777)  # no half build beside it


def test_a_rebuild_that_breaks_while_copying_changes_nothing(recorded: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "dataset"
    build_dataset(recorded, out, rl_fraction=0.0, seed=0)
    before = build_files(out)
    real_copy, calls = shutil.copyfile, []

    def copy_then_fail(origin, target):
        calls.append(target)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_copy(origin, target)

    monkeypatch.setattr(shutil, "copyfile", copy_then_fail)
    with pytest.raises(OSError, match="No space"):
        build_dataset(recorded, out, rl_fraction=0.5, seed=1)
    assert build_files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset", "recorded"]


def test_a_rebuild_replaces_the_build_and_keeps_other_files(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    build_dataset(recorded, out, rl_fraction=0.0, seed=0)
    (out / "notes.txt").write_text("keep me")
    (out / "images" / "stale").mkdir()  # the build's own folder: replaced whole
    build_dataset(recorded, out, rl_fraction=0.5, seed=1)
    assert (out / "notes.txt").read_text() == "keep me"
    assert not (out / "images" / "stale").exists()
    assert json.loads((out / "build-report.json").read_text())["parameters"]["rl_fraction"] == 0.5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset", "recorded"]
