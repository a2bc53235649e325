"""tests/abuse.py's fast areas against real servers: every case holds (issue 13)."""

from __future__ import annotations

import pytest

from tests.abuse import FAST_AREAS, abuse

pytestmark = pytest.mark.slow


async def test_the_abuse_suite_finds_no_failures() -> None:
    report = await abuse(FAST_AREAS, timeout=900)
    assert set(report.areas) == set(FAST_AREAS)
    assert all(t.tried > 0 for t in report.areas.values())
    assert report.failed == 0, report.table()
