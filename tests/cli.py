"""Run the ``thinkedit`` CLI as a real process, the way a user would."""

from __future__ import annotations

import os
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


def thinkedit(*args: str, data_dir: Path, cwd: Path | None = None, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "servers.cli", *args],
        env=cli_env(data_dir),
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
