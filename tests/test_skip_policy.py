"""Under CI=true a skipped test fails the run unless tests/skips_allowed.txt names it, with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SKIPS_ALLOWED, SKIPS_ALLOWED_ENV, read_allowed_skips

pytest_plugins = ["pytester"]

SKIPPING = """
import pytest

def test_runs():
    assert True

def test_skips():
    pytest.skip("no such thing here")
"""


@pytest.fixture
def skipping(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makepyfile(test_inner=SKIPPING)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    monkeypatch.setenv(SKIPS_ALLOWED_ENV, str(pytester.path / "allowed.txt"))
    (pytester.path / "allowed.txt").write_text("# nothing allowed\n")
    return pytester


def test_an_unlisted_skip_fails_a_ci_run(skipping: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    result = skipping.runpytest("-p", "tests.conftest")
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*not in tests/skips_allowed.txt*", "test_inner.py::test_skips: *no such thing here"])


def test_a_listed_skip_or_a_run_outside_ci_passes(skipping: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    (skipping.path / "allowed.txt").write_text("test_inner.py::test_skips # needs a thing CI has not\n")
    assert skipping.runpytest("-p", "tests.conftest").ret == pytest.ExitCode.OK
    monkeypatch.setenv("CI", "false")
    (skipping.path / "allowed.txt").write_text("")
    assert skipping.runpytest("-p", "tests.conftest").ret == pytest.ExitCode.OK


def test_an_entry_without_a_reason_is_refused(tmp_path: Path) -> None:
    bare = tmp_path / "allowed.txt"
    bare.write_text("tests/test_x.py::test_y\n")
    with pytest.raises(pytest.UsageError, match="say why"):
        read_allowed_skips(bare)
    assert all(reason for reason in read_allowed_skips(SKIPS_ALLOWED).values())
