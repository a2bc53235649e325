"""Run the ``thinkedit`` CLI as a real process, the way a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli_env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["THINKEDIT_DATA_DIR"] = str(data_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def thinkedit(*args: str, data_dir: Path, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None,
              **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "thinkedit.servers.cli", *args],
        env={**cli_env(data_dir), **(env or {})},
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def tiny_profile_that_never_stops_early(directory: Path) -> Path:
    """Write the tiny profile with thresholds a random model never reaches, so runs go the distance."""
    text = (ROOT / "tools" / "profiles" / "tiny.toml").read_text()
    path = directory / "tiny-long.toml"
    path.write_text(text.replace("[loop]\n", "[loop]\nsemantic_threshold = 10\nquality_threshold = 10\n"))
    return path


def edit_killed_at(prefix: str, *args: str, data_dir: Path) -> tuple[str, list[str]]:
    """Run ``thinkedit edit ARGS``, SIGKILL it at the first stderr line starting with ``prefix``.

    Return the run id (from the CLI's first line) and the lines seen; fail if it was not killed.
    """
    proc = subprocess.Popen([sys.executable, "-m", "thinkedit.servers.cli", "edit", *args], cwd=ROOT, env=cli_env(data_dir),
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    seen: list[str] = []
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            seen.append(line)
            if line.startswith(prefix):
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    run_id = seen[0].split()[1]
    assert seen[0].startswith(f"run {run_id}")
    return run_id, seen


def check_resumed_after_round_1(resumed: subprocess.CompletedProcess, out: Path) -> None:
    """Check a resumed 3-round run redid nothing of round 1 and finished rounds 2 and 3."""
    assert resumed.returncode == 0, resumed.stderr
    # Round 1 was neither edited nor critiqued again.
    assert not [line for line in resumed.stderr.splitlines() if line.startswith("round 1 ·")]
    assert "round 2 · editing" in resumed.stderr and "round 3 · editing" in resumed.stderr
    data = json.loads((out / "trajectory.json").read_text())
    assert [r["index"] for r in data["rounds"]] == [1, 2, 3]
    assert data["stop_reason"] == "max_rounds"
