"""The load test, small: 8 concurrent runs through MCP HTTP and 2 Ray Serve editor replicas all finish alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.load import load_test

pytestmark = pytest.mark.slow


async def test_eight_concurrent_runs_complete_without_cross_talk(server_data_dir: Path) -> None:
    report = await load_test(runs=8, max_rounds=2, editor_backend="ray", data_dir=str(server_data_dir), timeout=400)
    assert report.completed == 8
    assert report.mismatches == []  # each run equals its solo run (exact, or within batching's float rounding)
    assert report.exact + report.within_tolerance == 8 and report.largest_level_difference <= 3
    # Ray Serve itself served: no fallback to uvicorn, and two distinct Serve replicas (named by Ray's replica
    # context) answered edits.
    assert report.editor_backend == "ray"
    assert len(report.replica_ids) == 2 and all(r.startswith("replica-") for r in report.replica_ids), report.replica_ids
    assert all(mib > 0 for label, mib in report.peak_mib if label in ("MCP server", "editor server"))
