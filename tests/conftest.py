from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


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
