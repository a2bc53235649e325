"""The load test, small: 8 concurrent runs through MCP HTTP and 2 Ray Serve editor replicas all finish alike."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_eight_concurrent_runs_complete_without_cross_talk(server_data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    # Run as a user runs it, from another directory: the script finds the repository itself.
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load.py"), "--runs", "8", "--max-rounds", "2", "--editor-backend", "ray",
         "--data-dir", str(server_data_dir), "--timeout", "400", "--json", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["completed"] == 8
    assert report["mismatches"] == []  # each run equals its solo run (exact, or within batching's float rounding)
    assert report["exact"] + report["within_tolerance"] == 8 and report["largest_level_difference"] <= 3
    # Ray Serve itself served: no fallback to uvicorn, and two distinct Serve replicas (named by Ray's replica
    # context) answered edits.
    assert report["editor_backend"] == "ray"
    replica_ids = report["replica_ids"]
    assert len(replica_ids) == 2 and all(r.startswith("replica-") for r in replica_ids), replica_ids
    assert all(mib > 0 for label, mib in report["peak_mib"] if label in ("MCP server", "editor server"))
