"""Reference images (multi-image editing) through every door, with the tiny Qwen-Image-Edit-2509."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import openai
import pytest
from PIL import Image

from tests.cli import thinkedit
from tests.mcp_support import check_structured, error_text, stdio_session
from tests.servers import editor_server, png_bytes
from thinkedit.tools.config import EditorConfig
from thinkedit.tools.editors.openai_images import OpenAIImagesEditor
from thinkedit.tools.types import EditRequest

pytestmark = pytest.mark.slow

INSTRUCTION = "put the hat from image 2 and the scarf from image 3 on the cat"


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    folder = tmp_path / "pictures"
    folder.mkdir()
    Image.new("RGB", (300, 200), (200, 60, 60)).save(folder / "cat.png")
    Image.new("RGB", (120, 160), (20, 20, 220)).save(folder / "hat.png")
    Image.new("RGB", (90, 90), (20, 200, 20)).save(folder / "scarf.jpg")
    return folder


def test_cli_ref(pictures: Path, tmp_path: Path, server_data_dir: Path) -> None:
    out = tmp_path / "out"
    result = thinkedit("edit", str(pictures / "cat.png"), INSTRUCTION, "--profile", "tiny-qwen",
                       "--ref", str(pictures / "hat.png"), "--ref", str(pictures / "scarf.jpg"),
                       "--max-rounds", "1", "--out", str(out), data_dir=server_data_dir)
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "trajectory.json").read_text())
    assert data["editor"] == "tiny-qwen-image-edit-plus"
    assert [(r["width"], r["height"]) for r in data["reference_images"]] == [(120, 160), (90, 90)]
    assert all(Path(r["uri"]).is_file() for r in data["reference_images"])  # in the artifact store
    assert Image.open(out / "final.png").size == (300, 200)
    html = (out / "report.html").read_text()
    embedded = json.loads(html.split('id="thinkedit-run-data">')[1].split("</script>")[0])
    refs = embedded["reference_images"]  # the renderer draws them as "Reference: image 2", "… 3"
    assert [(r["width"], r["height"]) for r in refs] == [(120, 160), (90, 90)]
    assert all(r["src"].startswith("data:image/png;base64,") for r in refs)
    assert "Reference: image" in html  # the renderer's caption is inlined with it

    too_many = thinkedit("edit", str(pictures / "cat.png"), "x", "--profile", "tiny-qwen", "--max-rounds", "1",
                         *(arg for _ in range(3) for arg in ("--ref", str(pictures / "hat.png"))),
                         data_dir=server_data_dir)
    assert too_many.returncode == 2 and "3 reference images; an image takes at most 2" in too_many.stderr


async def test_editor_server_takes_several_image_parts(pictures: Path, server_data_dir: Path,
                                                       server_logs: Path) -> None:
    with editor_server(server_data_dir, server_logs, "--max-side", "256", model="tiny-qwen-image-edit-plus") as server:
        client = openai.AsyncOpenAI(base_url=server.url, api_key="unused", max_retries=0)
        parts = [(p.name, p.read_bytes(), "image/png") for p in
                 (pictures / "cat.png", pictures / "hat.png", pictures / "scarf.jpg")]
        reply = await client.images.edit(image=parts, prompt=INSTRUCTION, model="tiny-qwen-image-edit-plus",
                                         extra_body={"seed": 2})
        out = Image.open(io.BytesIO(base64.b64decode(reply.data[0].b64_json)))
        assert out.size == (300, 200)
        with pytest.raises(openai.UnprocessableEntityError, match="takes 3 input image"):
            await client.images.edit(image=[*parts, parts[1]], prompt="x", model="tiny-qwen-image-edit-plus")

        # Our openai-images client sends the references the same way.
        editor = OpenAIImagesEditor(EditorConfig(backend="openai-images", model="tiny-qwen-image-edit-plus",
                                                 base_url=server.url))
        cat, hat = Image.open(pictures / "cat.png"), Image.open(pictures / "hat.png")
        result = await editor.edit(EditRequest(image=cat, instruction=INSTRUCTION, seed=2, references=[hat]))
        assert result.image.size == (300, 200)


async def test_mcp_references(pictures: Path, server_data_dir: Path, tmp_path: Path) -> None:
    hat_uri = "data:image/png;base64," + base64.b64encode(png_bytes(Image.open(pictures / "hat.png"))).decode()
    async with stdio_session(server_data_dir, "--profile", "tiny-qwen", "--allow-root", str(pictures),
                             log=tmp_path / "mcp.log") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "references" in tools["think_while_edit"].input_schema["properties"]
        result = await client.call_tool("think_while_edit", {
            "image": str(pictures / "cat.png"), "instruction": INSTRUCTION, "max_rounds": 1, "wait_seconds": 280,
            "references": [hat_uri, str(pictures / "scarf.jpg")],
        })
        run = check_structured(result, tools["think_while_edit"].output_schema)
        assert run["status"] == "done", run
        assert [(r["width"], r["height"]) for r in run["reference_images"]] == [(120, 160), (90, 90)]
        assert (run["final_image"]["width"], run["final_image"]["height"]) == (300, 200)
        trajectory = json.loads((Path(run["outputs_dir"]) / "trajectory.json").read_text())
        assert len(trajectory["reference_images"]) == 2

        one = await client.call_tool("edit_image", {"image": str(pictures / "cat.png"), "instruction": INSTRUCTION,
                                                    "references": [run["reference_images"][0]["resource_uri"]]})
        edited = check_structured(one, tools["edit_image"].output_schema)
        assert (edited["image"]["width"], edited["image"]["height"]) == (300, 200)
        assert len(edited["reference_images"]) == 1

        bad = await client.call_tool("edit_image", {"image": str(pictures / "cat.png"), "instruction": "x",
                                                    "references": [str(tmp_path / "secret.png")]})
        assert "outside the allowed roots" in error_text(bad)
