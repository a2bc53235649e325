"""A run of the random-weight demo models says so wherever its result is shown; a real one does not."""

from __future__ import annotations

import json
from pathlib import Path

from mcp import Client

from thinkedit.agent.view import run_view
from thinkedit.servers.mcp.lifespan import ServerConfig
from thinkedit.servers.mcp.server import build_server
from thinkedit.tools.profiles import DEMO_NOTE, is_demo, load_profile
from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts
from tests.mcp_support import CHELSEA, ROOT, error_text
from tests.test_ui_api import client, stored_run

SCRIPT = [(3, 4, "add a hat"), (9, 9, "add a red hat")]
TINY_MODELS = {"editor": {"backend": "scripted", "model": "tiny-kontext"},
               "thinker": {"backend": "scripted", "model": "tiny-qwen2.5-vl"}}


def test_only_the_tiny_profiles_are_demos() -> None:
    demos = {name for name in ("tiny", "tiny-qwen", "kontext", "openai", "expert")
             if is_demo((p := load_profile(name, env={})).editor, p.thinker)}
    assert demos == {"tiny", "tiny-qwen"}


async def test_trajectory_and_gallery_carry_the_sentence(data_dir: Path, photo) -> None:
    demo = await stored_run(data_dir, photo, verdicts(*SCRIPT), **TINY_MODELS)
    real = await stored_run(data_dir, photo, verdicts(*SCRIPT))
    data = run_view(demo, demo.settings).trajectory()
    assert data["notes"][0] == DEMO_NOTE and data["demo_note"] == DEMO_NOTE
    assert DEMO_NOTE not in run_view(real, real.settings).trajectory()["notes"] and run_view(real, real.settings).trajectory()["demo_note"] is None
    with client(data_dir) as http:
        cards = {r["run_id"]: r for r in http.get("/api/runs").json()["runs"]}
        assert cards[demo.run_id]["demo_note"] == DEMO_NOTE and cards[real.run_id]["demo_note"] is None
        assert http.get(f"/api/runs/{demo.run_id}").json()["demo_note"] == DEMO_NOTE
        assert http.get(f"/api/runs/{real.run_id}").json()["demo_note"] is None


async def test_the_mcp_result_says_it_in_text_and_notes(data_dir: Path) -> None:
    for profile, demo in (("tiny", True), ("kontext", False)):
        backends = FakeBackends(ScriptedEditor(), ScriptedThinker(verdicts(*SCRIPT)))
        server = build_server(ServerConfig(data_dir=data_dir, roots=[ROOT], profile=profile), backends=backends)
        async with Client(server, mode="legacy") as session:
            result = await session.call_tool(
                "think_while_edit", {"image": str(CHELSEA), "instruction": "put a hat on the cat", "wait_seconds": 30}
            )
        assert not result.is_error, error_text(result)
        run = result.structured_content
        assert run["status"] == "done"
        assert (run["notes"][:1] == [DEMO_NOTE]) is demo, run["notes"]
        assert result.content[0].text.startswith(DEMO_NOTE) is demo, result.content[0].text
        written = json.loads((Path(run["outputs_dir"]) / "trajectory.json").read_text())
        assert (DEMO_NOTE in written["notes"]) is demo
        async with Client(server, mode="legacy") as session:
            edited = await session.call_tool("edit_image", {"image": str(CHELSEA), "instruction": "add a hat"})
        assert not edited.is_error, error_text(edited)
        assert (edited.structured_content["notes"][:1] == [DEMO_NOTE]) is demo
        assert edited.content[0].text.startswith(DEMO_NOTE) is demo
