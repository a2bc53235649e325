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


@pytest.fixture(scope="session")
def mcp_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Share one data directory (and its tiny models) across the MCP server tests."""
    return tmp_path_factory.mktemp("mcp-data")
