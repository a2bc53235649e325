"""A graph server's clients name files by path: the graph under ``langgraph dev`` reads only allowed folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from thinkedit.agent.graph import build_graph, default_retry
from thinkedit.agent.settings import SettingsInput
from thinkedit.agent.state import RunInput, RunOutput
from thinkedit.tools.errors import BadInputError
from tests.conftest import EXAMPLES
from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts


def server_graph(confine: bool = True):
    """The graph as agent/studio.py builds it, with scripted backends."""
    return build_graph(FakeBackends(ScriptedEditor(), ScriptedThinker(verdicts((9, 9, "x")))),
                       retry=default_retry(initial_interval=0.01), input_schema=RunInput, output_schema=RunOutput,
                       context_schema=SettingsInput, confine=confine)


@pytest.fixture
def server_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The server's working directory; its data dir inside it; no extra allowed folders."""
    here = tmp_path / "server"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("THINKEDIT_DATA_DIR", str(here / "data"))
    monkeypatch.delenv("THINKEDIT_ALLOW_ROOT", raising=False)
    return here


async def run(graph, **given) -> dict:
    return await graph.ainvoke({"instruction": "add a hat", **given}, {"configurable": {"thread_id": "t"}})


async def test_an_image_outside_the_servers_folders_is_refused_before_it_is_read(server_dir: Path) -> None:
    outside = str(EXAMPLES / "chelsea.png")
    with pytest.raises(BadInputError, match="outside the folders this server reads from") as refused:
        await run(server_graph(), image=outside)
    assert "THINKEDIT_ALLOW_ROOT" in str(refused.value)
    with pytest.raises(BadInputError, match="outside the folders"):  # a missing file says no more than that
        await run(server_graph(), image="/no/such/dir/x.png")
    shutil.copyfile(EXAMPLES / "chelsea.png", server_dir / "photo.png")
    with pytest.raises(BadInputError, match="outside the folders"):  # a reference is a path like any other
        await run(server_graph(), image="photo.png", references=[outside])
    (server_dir / "link.png").symlink_to(outside)  # a link inside that leads out
    with pytest.raises(BadInputError, match="outside the folders"):
        await run(server_graph(), image="link.png")


async def test_images_inside_its_folders_or_allowed_ones_are_read(server_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copyfile(EXAMPLES / "chelsea.png", server_dir / "photo.png")
    done = await run(server_graph(), image="photo.png")
    assert done["status"] == "done" and done["final_image"]["width"] == 451
    monkeypatch.setenv("THINKEDIT_ALLOW_ROOT", f"/no/such/place:{EXAMPLES}")
    allowed = await run(server_graph(), image=str(EXAMPLES / "chelsea.png"))
    assert allowed["status"] == "done"
    # In process (the Runner, the LangChain tool, a parent graph) the caller's own paths are not confined.
    assert (await run(server_graph(confine=False), image=str(EXAMPLES / "coffee.png")))["status"] == "done"


async def test_a_profile_file_outside_its_folders_is_refused_unread(server_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere" / "app.toml"
    secret.parent.mkdir()
    secret.write_text('db_password = "hunter2"\n')
    shutil.copyfile(EXAMPLES / "chelsea.png", server_dir / "photo.png")
    with pytest.raises(BadInputError, match="profile .*app.toml is outside the folders") as refused:
        await run(server_graph(), image="photo.png", overrides={"profile": str(secret)})
    assert "hunter2" not in str(refused.value)
    # The run's context, as Studio's assistant configuration sets it, is held to the same folders.
    with pytest.raises(BadInputError, match="profile .* is outside the folders"):
        await server_graph().ainvoke({"image": "photo.png", "instruction": "x"}, {"configurable": {"thread_id": "c"}},
                                     context={"profile": str(secret)})


async def test_the_graph_langgraph_dev_serves_is_the_confined_one(server_dir: Path) -> None:
    from thinkedit.agent.studio import graph

    with pytest.raises(BadInputError, match="outside the folders this server reads from"):
        await graph.ainvoke({"image": str(EXAMPLES / "chelsea.png"), "instruction": "x"},
                            {"configurable": {"thread_id": "studio"}})


async def test_a_profile_file_in_the_data_dir_is_read(server_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data-elsewhere"  # the server's data dir, outside its working directory
    monkeypatch.setenv("THINKEDIT_DATA_DIR", str(data))
    data.mkdir()
    tiny = Path(__file__).resolve().parents[1] / "tools" / "profiles" / "tiny.toml"
    (data / "mine.toml").write_text(tiny.read_text())
    shutil.copyfile(EXAMPLES / "chelsea.png", server_dir / "photo.png")
    done = await run(server_graph(), image="photo.png", overrides={"profile": str(data / "mine.toml")})
    assert done["status"] == "done"
