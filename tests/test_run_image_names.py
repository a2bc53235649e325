"""A run's image names mean the same image on every surface: the gallery API, MCP resources, MCP image inputs."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from urllib.parse import quote

import pytest
from mcp import Client
from PIL import Image

from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts
from tests.mcp_support import ROOT, error_text
from tests.test_ui_api import client, stored_run
from thinkedit.agent.runs import RunRegistry
from thinkedit.servers.mcp.server import build_server
from thinkedit.servers.mcp.lifespan import ServerConfig


def gallery_image(data_dir: Path, run_id: str, name: str) -> tuple[int, str]:
    """Ask the gallery for a run's image: (status, sha256 of the pixels or the error text)."""
    with client(data_dir) as http:
        got = http.get(f"/api/runs/{run_id}/images/{quote(name)}.png")
    return got.status_code, pixels(got.content) if got.status_code == 200 else got.json()["error"]


def pixels(png: bytes) -> str:
    return hashlib.sha256(Image.open(io.BytesIO(png)).convert("RGB").tobytes()).hexdigest()


async def mcp_images(data_dir: Path, run_id: str, uris: list[str]) -> list[str]:
    """Read each URI as an MCP resource: the pixels' sha256, or the error text."""
    import base64

    server = build_server(ServerConfig(data_dir=data_dir, roots=[ROOT]),
                          backends=FakeBackends(ScriptedEditor(), ScriptedThinker(verdicts((9, 9, "x")))))
    out = []
    async with Client(server, mode="legacy") as mcp:
        for uri in uris:
            try:
                blob = (await mcp.read_resource(uri)).contents[0].blob
                out.append(pixels(base64.b64decode(blob)))
            except Exception as exc:  # noqa: BLE001 - the error's text is what we compare
                out.append(str(exc))
        # An image input naming the run resolves the same way.
        used = await mcp.call_tool("edit_image", {"image": f"thinkedit://runs/{run_id}/final.png", "instruction": "x"})
        out.append(error_text(used) if used.is_error else "edited")
    return out


async def test_a_run_without_a_final_image_says_so_on_every_surface(data_dir: Path, photo) -> None:
    # Review on: the run pauses after its first critique, with one round and nothing chosen yet.
    state = await stored_run(data_dir, photo, verdicts((3, 4, "add a red hat")), review=True, max_rounds=3)
    run_id = state.run_id
    assert RunRegistry.for_data(data_dir).load(run_id).status == "awaiting_review"

    status, final = gallery_image(data_dir, run_id, "final")
    assert status == 400
    assert f"run {run_id} has no final image yet (status: awaiting_review): it has source, round-1" in final
    _, round_one = gallery_image(data_dir, run_id, "round-1")
    _, source = gallery_image(data_dir, run_id, "source")
    _, missing = gallery_image(data_dir, run_id, "round-2")

    base = f"thinkedit://runs/{run_id}"
    got = await mcp_images(data_dir, run_id, [f"{base}/final.png", f"{base}/rounds/1.png", f"{base}/source.png",
                                              f"{base}/rounds/2.png", f"{base}/previews/final.jpg"])
    mcp_final, mcp_round, mcp_source, mcp_missing, preview, used = got
    assert final in mcp_final and final in preview and final in used  # the same answer, word for word
    assert (mcp_round, mcp_source) == (round_one, source) and round_one != source
    assert f"run {run_id} has no round 2: it has source, round-1" in missing and missing in mcp_missing


async def test_final_is_the_chosen_round_on_every_surface(data_dir: Path, photo) -> None:
    state = await stored_run(data_dir, photo, verdicts((3, 4, "add a red hat"), (9, 9, "x")), max_rounds=3)
    assert state.best_round == 2
    names = ["final", "round-1", "round-2"]
    gallery = [gallery_image(data_dir, state.run_id, name) for name in names]
    assert [status for status, _ in gallery] == [200, 200, 200]
    base = f"thinkedit://runs/{state.run_id}"
    mcp = await mcp_images(data_dir, state.run_id, [f"{base}/final.png", f"{base}/rounds/1.png", f"{base}/rounds/2.png"])
    assert mcp[:3] == [sha for _, sha in gallery]
    assert gallery[0] == gallery[2] != gallery[1] and mcp[3] == "edited"


@pytest.mark.parametrize("name", ["round-0", "round-x", "reference-1", "final-2", "source\n", "final\n", "round-1\n"])
def test_unknown_names_are_refused_with_the_names_to_use(data_dir: Path, photo, name: str) -> None:
    import asyncio

    state = asyncio.run(stored_run(data_dir, photo, verdicts((9, 9, "x"))))
    status, error = gallery_image(data_dir, state.run_id, name)
    assert status == 400 and f"unknown image {name!r}: use source, final, round-N" in error
