from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
#: The one list of tests that may skip under CI=true: a node id per line, then " # " and why CI cannot run it.
SKIPS_ALLOWED = Path(__file__).with_name("skips_allowed.txt")
#: Points the skip policy at another allow-list (its own tests do).
SKIPS_ALLOWED_ENV = "THINKEDIT_SKIPS_ALLOWED"


def read_allowed_skips(path: Path) -> dict[str, str]:
    """Return ``{node id: reason}`` from an allow-list; an entry without a reason is an error."""
    allowed: dict[str, str] = {}
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        node, _, reason = line.partition(" # ")
        if not reason.strip():
            raise pytest.UsageError(f"{path}:{number}: say why {node.strip()!r} cannot run in CI, after ' # '")
        allowed[node.strip()] = reason.strip()
    return allowed


class SkipPolicy:
    """Under CI=true, fail the run on a skip the allow-list does not name: a skipped test proves nothing."""

    def __init__(self, allowed: dict[str, str]) -> None:
        self.allowed = allowed
        self.unlisted: list[tuple[str, str]] = []

    def _note(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail") and report.nodeid not in self.allowed:
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            self.unlisted.append((report.nodeid, reason))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._note(report)  # a module-level importorskip skips at collection

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._note(report)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.unlisted:
            terminalreporter.section("skipped under CI=true, not in tests/skips_allowed.txt", red=True)
            for node, reason in self.unlisted:
                terminalreporter.line(f"{node}: {reason}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.unlisted and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config: pytest.Config) -> None:
    """Install the CI skip policy when CI=true (as CI services and .ci/run set it)."""
    if os.environ.get("CI") == "true":
        allowed = read_allowed_skips(Path(os.environ.get(SKIPS_ALLOWED_ENV) or SKIPS_ALLOWED))
        config.pluginmanager.register(SkipPolicy(allowed), "thinkedit-skip-policy")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("THINKEDIT_DATA_DIR", str(path))
    return path


@pytest.fixture
def photo() -> Image.Image:
    return Image.open(EXAMPLES / "chelsea.png").convert("RGB")


# -- real servers on loopback, shared by the server tests (started on first use) -----------------


@pytest.fixture(scope="session")
def server_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hold the tiny models the server processes build, once per test session."""
    return tmp_path_factory.mktemp("server-data")


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def editor(server_data_dir: Path, server_logs: Path):  # type: ignore[no-untyped-def]
    """An editor server for tiny-kontext with default queue and batching."""
    from tests.servers import editor_server

    with editor_server(server_data_dir, server_logs) as server:
        yield server


@pytest.fixture(scope="session")
def thinker(server_data_dir: Path, server_logs: Path):  # type: ignore[no-untyped-def]
    """A local thinker server for tiny-qwen2.5-vl."""
    from tests.servers import thinker_server

    with thinker_server(server_data_dir, server_logs) as server:
        yield server


@pytest.fixture(scope="session")
def mcp_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Share one data directory (and its tiny models) across the MCP server tests."""
    return tmp_path_factory.mktemp("mcp-data")
