"""Reference images in the loop: the LangGraph input, the Runner, the editor and thinker requests, the trajectory."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts
from tests.test_graph import make_settings, run
from thinkedit.agent.graph import build_graph
from thinkedit.agent.state import RunState
from thinkedit.agent.view import run_view
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.types import MAX_REFERENCES


async def test_runner_passes_references_to_every_edit_and_critique(data_dir: Path, photo: Image.Image) -> None:
    hat, scarf = Image.new("RGB", (40, 30), "blue"), Image.new("RGB", (20, 50), "green")
    script = verdicts((3, 3, "a"), (9, 9, "b"))
    editor, thinker = ScriptedEditor(), ScriptedThinker(script)
    runner_state, *_ = await _run_with_refs(data_dir, photo, editor, thinker, [hat, scarf])
    assert [[r.size for r in call.references] for call in editor.calls] == [[(40, 30), (20, 50)]] * 2
    assert [[r.size for r in call.references] for call in thinker.calls] == [[(40, 30), (20, 50)]] * 2
    data = run_view(runner_state, runner_state.settings).trajectory()
    assert [(r["width"], r["height"]) for r in data["reference_images"]] == [(40, 30), (20, 50)]


async def _run_with_refs(data_dir, photo, editor, thinker, refs):  # type: ignore[no-untyped-def]
    from tests.test_graph import make_runner

    runner = make_runner(data_dir, editor, thinker)
    record = runner.prepare(photo, "put the hat from image 2 on the cat", make_settings(data_dir), references=refs)
    assert len(record.references) == 2 and runner.registry.load(record.run_id).references == record.references
    return await runner.start(record), runner


async def test_langgraph_input_names_references_by_path(data_dir: Path, photo: Image.Image, tmp_path: Path) -> None:
    photo.save(tmp_path / "cat.png")
    Image.new("RGB", (40, 30), "blue").save(tmp_path / "hat.png")
    editor, thinker = ScriptedEditor(), ScriptedThinker(verdicts((9, 9, "x")))
    graph = build_graph(FakeBackends(editor, thinker))
    out = await graph.ainvoke(
        {"image": str(tmp_path / "cat.png"), "references": [str(tmp_path / "hat.png")], "instruction": "hat"},
        {"configurable": {"thread_id": "refs-1"}},
        context=make_settings(data_dir),
    )
    state = RunState.model_validate(out)
    assert [r.size for r in state.reference_images] == [(40, 30)]
    assert editor.calls[0].references[0].size == (40, 30)


async def test_without_references_nothing_changes(data_dir: Path, photo: Image.Image) -> None:
    state, editor, thinker, _, _ = await run(data_dir, photo, ScriptedThinker(verdicts((9, 9, "x"))))
    assert editor.calls[0].references == [] and thinker.calls[0].references == []
    assert run_view(state, state.settings).trajectory()["reference_images"] == []


async def test_more_references_than_an_image_takes_are_refused_at_every_door(
    data_dir: Path, photo: Image.Image, tmp_path: Path
) -> None:
    """The Runner and the graph's input refuse a third reference before reading it: a critique shows the thinker
    the source, the references and the edit, and the vLLM launcher lets a prompt hold that many images."""
    from tests.test_graph import make_runner

    from thinkedit.servers.thinker.vllm import VllmOptions, vllm_command

    assert MAX_REFERENCES == 2
    assert '"image": 4' in " ".join(vllm_command(VllmOptions(model="m")))
    editor, thinker = ScriptedEditor(), ScriptedThinker(verdicts((9, 9, "x")))
    runner = make_runner(data_dir, editor, thinker)
    hat = Image.new("RGB", (40, 30), "blue")
    with pytest.raises(BadInputError, match="3 reference images; an image takes at most 2"):
        runner.prepare(photo, "hat", make_settings(data_dir), references=[hat] * 3)
    assert runner.registry.list() == []  # nothing recorded

    photo.save(tmp_path / "cat.png")
    graph = build_graph(FakeBackends(editor, thinker))
    with pytest.raises(BadInputError, match="3 reference images"):
        await graph.ainvoke(
            {"image": str(tmp_path / "cat.png"), "references": [str(tmp_path / "missing.png")] * 3, "instruction": "x"},
            {"configurable": {"thread_id": "refs-3"}},
            context=make_settings(data_dir),
        )
    assert editor.calls == [] and thinker.calls == []
