"""Run bench/gpu_round.py the way the device will, at tiny scale on this CPU, and check its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_round.py"
KEYS = {"status", "scale", "environment", "settings", "weights", "memory", "warmup", "loop", "throughput",
        "skipped", "errors", "wall_seconds"}


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # From another directory and without PYTHONPATH: the script finds the repository itself.
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT.parent, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.mark.parametrize("decoding", ["forced", "grammar"])
def test_tiny_run_exits_0_and_writes_every_figure(tmp_path: Path, decoding: str) -> None:
    out = tmp_path / "figures.json"
    lighter = ["--rounds", "1", "--k", "1,2"] if decoding == "grammar" else []  # grammar: the path, not the sizes
    result = _run("--scale", "tiny", "--decoding", decoding, *lighter, "--json", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert KEYS <= set(report) and report["status"] == "done" and not report["errors"]
    assert report["settings"]["decoding"] == decoding
    rounds = report["loop"]["rounds"]
    assert {"edit_s", "think_s", "overhead_s", "wall_s", "prefill_s", "decode_ms_per_token"} <= set(rounds[0])
    for row in rounds:  # a round's wall time is read from its events as they reach the script's callback,
        # which the event loop may run a little after the round began: allow for that lag, not for a lost part
        assert row["wall_s"] >= row["edit_s"] + row["think_s"] - 0.02
    if decoding == "forced":
        assert len(rounds) == 2 and report["loop"]["stop_reason"] == "max_rounds"
        assert all(row["new_tokens"] == 96 for row in rounds)
    assert [row["k"] for row in report["throughput"]] == ([1, 2, 4] if decoding == "forced" else [1, 2])
    assert report["throughput"][0]["ratio_vs_k1"] == pytest.approx(1.0)
    assert all(row["images_per_s"] > 0 for row in report["throughput"])
    assert report["weights"]["flux_transformer"]["params_b"] > 0 and "memory" in report
    assert "loop round" in result.stdout and "best-of-K" in result.stdout


def test_time_budget_skips_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    result = _run("--scale", "tiny", "--time-budget", "0", "--json", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["loop"] == {} and report["throughput"] == []
    assert any(note.startswith("loop: skipped") for note in report["skipped"])
    assert any("K=4: skipped" in note for note in report["skipped"])


def test_dry_run_builds_the_full_sizes_on_meta() -> None:
    result = _run("--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    sizes = {line.split(":")[0].strip(): float(line.split(":")[1].split("B")[0]) for line in result.stdout.splitlines()}
    assert sizes["flux_transformer"] == pytest.approx(11.90, abs=0.01)  # FLUX.1 [dev]'s 12B
    assert sizes["t5_xxl_encoder"] == pytest.approx(4.76, abs=0.01)
    assert sizes["clip_l_text"] == pytest.approx(0.123, abs=0.001)
    assert sizes["thinker_total"] == pytest.approx(8.77, abs=0.01)  # Qwen3-VL-8B: 8.77B


def test_full_scale_without_cuda_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no CUDA device, even on a machine that has one
    result = _run("--json", str(tmp_path / "x.json"))
    assert result.returncode == 2 and "no CUDA device" in result.stderr and "--scale tiny" in result.stderr
    assert not (tmp_path / "x.json").exists()


def test_a_failed_stage_and_an_out_of_memory_k_are_reported(tmp_path: Path) -> None:
    out = tmp_path / "f.json"
    result = _run("--scale", "tiny", "--k", "1,4,8", "--simulate-failures", "--json", str(out))
    assert result.returncode == 1, result.stderr[-3000:]  # a failed stage: the run reports it and says so
    report = json.loads(out.read_text())
    assert report["errors"] == ["loop: RuntimeError: CUDA out of memory (simulated)"]
    assert [row["k"] for row in report["throughput"]] == [1, 4]
    assert report["throughput"][1] == {"k": 4, "error": "out of memory"}
    assert "best-of-K edit K=8: after K=4 ran out of memory" in report["skipped"]
    assert report["status"] == "failed"


def test_missing_or_old_dependencies_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.bench_support import gpu_report

    assert gpu_report._release("5.24.0.dev0") == (5, 24, 0) and gpu_report._release("2.13.0+cpu") == (2, 13, 0)
    assert gpu_report._release("1.0rc1") == (1, 0)
    monkeypatch.setitem(gpu_report.REQUIRED, "no_such_module_here", "no-such-dist")
    monkeypatch.setitem(gpu_report.MINIMUM_VERSIONS, "transformers", (99, 0))
    missing = gpu_report.missing_modules()
    assert "no-such-dist" in missing and any(m.startswith("transformers>=99.0 (found ") for m in missing)
