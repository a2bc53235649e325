"""``thinkedit edit --editor URL --thinker URL`` end to end, including an editor server that dies mid-run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT, ServerProcess, cli_env, editor_server

pytestmark = pytest.mark.slow
PHOTO = str(ROOT / "examples" / "chelsea.png")


def thinkedit(*args: str, data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "thinkedit.servers.cli", *args, "--data-dir", str(data_dir)]


def test_a_run_over_http_completes(editor: ServerProcess, thinker: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        thinkedit("edit", PHOTO, "put a red party hat on the cat", "--profile", "tiny", "--max-rounds", "2",
                  "--editor", editor.url, "--thinker", thinker.base, "--out", str(out), data_dir=tmp_path / "data"),
        cwd=ROOT, env=cli_env(tmp_path / "data"), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "final.png").is_file() and (out / "report.html").is_file()
    trajectory = json.loads((out / "trajectory.json").read_text())
    assert trajectory["rounds"] and trajectory["rounds"][0]["semantic"] is not None
    record = json.loads(next((tmp_path / "data" / "runs").glob("*.json")).read_text())
    assert record["settings"]["editor"]["backend"] == "openai-images"
    assert record["settings"]["editor"]["base_url"] == editor.url
    assert record["settings"]["thinker"]["backend"] == "chat-model"
    assert record["settings"]["thinker"]["base_url"] == f"{thinker.base}/v1"  # a bare host:port gets /v1
    assert record["settings"]["thinker"]["model"] == "tiny-qwen2.5-vl"  # the profile's model name


def test_editor_killed_mid_run_fails_clearly_then_resumes(
    thinker: ServerProcess, server_data_dir: Path, server_logs: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = editor_server(server_data_dir, server_logs).start()
    run = subprocess.Popen(
        thinkedit("edit", PHOTO, "put a red party hat on the cat", "--profile", "tiny", "--max-rounds", "3",
                  "--editor", first.url, "--thinker", thinker.url, "--out", str(tmp_path / "out"), data_dir=data),
        cwd=ROOT, env=cli_env(data), stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    try:
        assert run.stderr is not None
        for line in run.stderr:
            lines.append(line)
            if "round 1 · edited" in line:
                first.stop(signal.SIGKILL)  # the editor dies between round 1 and round 2
                break
        stderr = "".join(lines) + run.stderr.read()
        assert run.wait(120) == 1, stderr
    finally:
        first.stop(signal.SIGKILL)
        if run.poll() is None:
            run.kill()
    assert "TransientBackendError" in stderr and "cannot reach the editor server" in stderr
    run_id = stderr.split("thinkedit resume ")[1].split()[0]

    with editor_server(server_data_dir, server_logs, port=first.port):  # back where the run expects it
        resumed = subprocess.run(thinkedit("resume", run_id, data_dir=data), cwd=ROOT, env=cli_env(data),
                                 capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    redone = [line for line in resumed.stderr.splitlines() if line.startswith("round 1 ·")]
    assert not redone, "finished rounds must not be redone"
    assert "round 2 · editing" in resumed.stderr
    assert (tmp_path / "out" / "final.png").is_file()
