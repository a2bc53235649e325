"""Real-world files through every door: the CLI, the editor server and MCP give the displayed size back."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import openai
import pytest
from PIL import Image, ImageChops, ImageStat

from tests.cli import thinkedit
from tests.mcp_support import check_structured, stdio_session
from tests.photo_files import quadrants, samples
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

SAMPLES = {s.name: s for s in samples()}
# The CLI starts a process per file, so it gets the files of the "done when" and the animation.
CLI_FILES = ["orientation-6.jpg", "phone.heic", "cmyk.jpg", "animated.gif"]


def shows_quadrants(path: str | Path) -> bool:
    """Say whether a stored source image is the displayed test picture (right way up, right colours)."""
    diff = ImageChops.difference(Image.open(path).convert("RGB"), quadrants())
    return max(ImageStat.Stat(diff).mean) < 8


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for sample in SAMPLES.values():
        (folder / sample.name).write_bytes(sample.data)
    return folder


@pytest.mark.parametrize("name", CLI_FILES)
def test_cli_edits_come_back_at_the_displayed_size(name: str, files: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = thinkedit("edit", str(files / name), "make it brighter", "--profile", "tiny", "--max-rounds", "1",
                       "--out", str(out), data_dir=tmp_path.parent / "cli-data")
    assert result.returncode == 0, result.stderr
    sample = SAMPLES[name]
    assert Image.open(out / "final.png").size == sample.size
    data = json.loads((out / "trajectory.json").read_text())
    assert (data["source_image"]["width"], data["source_image"]["height"]) == sample.size
    if name != "cmyk.jpg":
        assert shows_quadrants(data["source_image"]["uri"])
    for expected in sample.notes:
        assert any(expected in note for note in data["notes"]), data["notes"]


async def test_editor_server_reads_every_shape(editor: ServerProcess) -> None:
    client = openai.AsyncOpenAI(base_url=editor.url, api_key="unused", max_retries=0)
    for sample in SAMPLES.values():
        reply = await client.images.edit(
            image=(sample.name, sample.data, "application/octet-stream"), prompt="add a hat", model="tiny-kontext",
            extra_body={"seed": 1},
        )
        out = Image.open(io.BytesIO(base64.b64decode(reply.data[0].b64_json)))
        assert out.size == sample.size, sample.name
    with pytest.raises(openai.BadRequestError, match="truncated"):
        await client.images.edit(image=("cut.jpg", SAMPLES["orientation-6.jpg"].data[:500], "image/jpeg"),
                                 prompt="x", model="tiny-kontext")


async def test_mcp_reads_every_shape(files: Path, mcp_data_dir: Path, tmp_path: Path) -> None:
    async with stdio_session(mcp_data_dir, "--allow-root", str(files), log=tmp_path / "mcp.log") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for sample in SAMPLES.values():
            result = await client.call_tool("edit_image", {"image": str(files / sample.name), "instruction": "hat"})
            out = check_structured(result, tools["edit_image"].output_schema)
            assert (out["image"]["width"], out["image"]["height"]) == sample.size, sample.name
            assert (out["source_image"]["width"], out["source_image"]["height"]) == sample.size
            if sample.colour == (220, 30, 30):
                assert shows_quadrants(out["source_image"]["path"]), sample.name
            for expected in sample.notes:
                assert any(expected in note for note in out["notes"]), (sample.name, out["notes"])
        run = await client.call_tool("think_while_edit", {"image": str(files / "orientation-8.jpg"),
                                                          "instruction": "hat", "max_rounds": 1, "wait_seconds": 240})
        data = check_structured(run, tools["think_while_edit"].output_schema)
        assert data["status"] == "done" and (data["final_image"]["width"], data["final_image"]["height"]) == (96, 64)
        assert any("orientation 8" in note for note in data["notes"])
        bad = await client.call_tool("edit_image", {"image": str(files / "missing.heic"), "instruction": "x"})
        assert bad.is_error
