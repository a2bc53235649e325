"""One read model of a run: every surface renders the same ``RunView``, read once per MCP result."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from pydantic import BaseModel

from thinkedit.agent import view as view_module
from thinkedit.agent.runs import RunRegistry
from thinkedit.agent.view import run_view
from thinkedit.servers.mcp import results
from thinkedit.servers.mcp.schemas import RunResult
from thinkedit.servers.mcp.viewer import VIEW_META
from tests.mcp_support import CHELSEA, NATIVE
from tests.test_mcp_app import APPS
from tests.test_mcp_runs import make_server

#: The properties (and required ones) of the think_while_edit output schema that real clients validate against.
WIRE_SCHEMA = {
    "RunResult": (
        ["run_id", "status", "instruction", "stop_reason", "best_round", "error", "source_image", "reference_images",
         "final_image", "rounds", "usage", "outputs_dir", "review", "notes", "message"],
        ["run_id", "status", "instruction", "source_image"],
    ),
    "RoundInfo": (
        ["index", "instruction", "seed", "seed_note", "image", "semantic", "quality", "overall", "satisfied",
         "reasoning", "refined_instruction", "edit_seconds", "think_seconds", "candidates", "usage"],
        ["index", "instruction", "seed", "image", "semantic", "quality", "overall", "satisfied", "reasoning",
         "refined_instruction", "edit_seconds", "think_seconds"],
    ),
    "CandidateInfo": (["seed", "image", "semantic", "quality", "overall"],) * 2,
    "ImageInfo": (["resource_uri", "path", "width", "height", "sha256"],) * 2,
    "UsageInfo": (
        ["edit_calls", "images_edited", "critiques", "thinker_input_tokens", "thinker_output_tokens",
         "editor_input_tokens", "editor_output_tokens", "tokens", "edit_seconds", "think_seconds", "cost_usd",
         "unpriced"],
        ["edit_calls", "images_edited", "critiques", "thinker_input_tokens", "thinker_output_tokens",
         "editor_input_tokens", "editor_output_tokens", "tokens", "edit_seconds", "think_seconds", "cost_usd"],
    ),
}


def test_the_wire_schema_derived_from_the_view_keeps_its_keys() -> None:
    schema = RunResult.model_json_schema()
    models = {"RunResult": schema, **schema["$defs"]}
    for name, (properties, required) in WIRE_SCHEMA.items():
        assert sorted(models[name]["properties"]) == sorted(properties), name
        assert sorted(models[name].get("required", [])) == sorted(required), name
        assert models[name]["additionalProperties"] is False, name
    view_fields = set(view_module.RoundView.model_fields)
    assert set(WIRE_SCHEMA["RoundInfo"][0]) <= view_fields  # a wire round is a projection of the view's round


def test_the_view_never_dumps_the_settings() -> None:
    assert view_module.RunView.model_fields["settings"].exclude is True


async def test_one_mcp_result_reads_builds_and_serialises_the_run_once(data_dir: Path, monkeypatch) -> None:
    """get_run on a finished run, for a client with MCP Apps: one record read and one checkpoint read for the
    result (beside the tool's own record check), one view built, one JSON serialisation of the result."""
    server, _ = make_server(data_dir)
    async with Client(server, mode="legacy", client_info=NATIVE) as client:
        done = await client.call_tool("think_while_edit", {"image": str(CHELSEA), "instruction": "a hat",
                                                           "max_rounds": 2, "wait_seconds": 30})
        run_id = done.structured_content["run_id"]
    calls: Counter[str] = Counter()

    def spy(owner: Any, name: str, key: str) -> None:
        real = getattr(owner, name)

        if hasattr(real, "__code__") and real.__code__.co_flags & 0x80:  # a coroutine function
            async def counted_async(*args: Any, **kwargs: Any) -> Any:
                calls[key] += 1
                return await real(*args, **kwargs)

            monkeypatch.setattr(owner, name, counted_async)
        else:
            def counted(*args: Any, **kwargs: Any) -> Any:
                calls[key] += 1
                return real(*args, **kwargs)

            monkeypatch.setattr(owner, name, counted)

    from langgraph.pregel import Pregel

    spy(RunRegistry, "load", "record read")
    spy(Pregel, "aget_state", "checkpoint read")
    spy(results, "run_view", "view built")
    spy(results, "to_json", "result serialised")
    spy(BaseModel, "model_dump_json", "result serialised")
    real_dumps = json.dumps
    monkeypatch.setattr(results.json, "dumps", lambda obj, *a, **k: (calls.update(["json.dumps"]), real_dumps(obj, *a, **k))[1])

    async with Client(server, extensions=[APPS], client_info=NATIVE) as client:
        looked = await client.call_tool("get_run", {"run_id": run_id, "wait_seconds": 0})
    assert looked.structured_content["status"] == "done" and set(looked.meta[VIEW_META]["rounds"]) == {"1", "2"}
    assert calls["record read"] == 2  # get_run's own check of the id, then the one read the result renders
    assert calls["checkpoint read"] == 1
    assert calls["view built"] == 1
    assert calls["result serialised"] == 1
    assert calls["json.dumps"] == 2  # the result's JSON text, and the App extras' size


async def test_every_surface_reads_the_same_view(data_dir: Path, photo, tmp_path: Path) -> None:
    """The trajectory, the LangChain tool's summary, the MCP result, the gallery card and a recording agree."""
    from thinkedit.agent.langchain_tool import summarize
    from thinkedit.agent.recording import read_trajectories, record_trajectory
    from thinkedit.agent.viewer import write_outputs
    from thinkedit.servers.ui.views import summary_of
    from tests.fakes import ScriptedThinker, verdicts
    from tests.test_graph import run

    state, _, _, _, runner = await run(data_dir, photo, ScriptedThinker(verdicts((3, 4, "x"), (9, 8, "y"))), max_rounds=2)
    record = runner.registry.load(state.run_id)
    trajectory = run_view(state, state.settings).trajectory()
    assert not {"settings", "error", "created_at", "updated_at"} & set(trajectory)
    summary = summarize(run_view(state, state.settings))
    result = results.run_result(record, state, live=False, outputs_dir=tmp_path / "none", store=runner.store)
    assert result.outputs_dir is None and result.final_image.path == state.final_image.uri  # no outputs: the store's
    writing = tmp_path / "writing"  # another process is still writing this run's folder: named once it is whole
    writing.mkdir()
    (writing / "final.png").write_bytes(runner.store.read_bytes(state.final_image))
    partial = results.run_result(record, state, live=False, outputs_dir=writing, store=runner.store)
    assert partial.outputs_dir is None and partial.final_image.path == state.final_image.uri
    write_outputs(state, runner.store, writing)
    whole = results.run_result(record, state, live=False, outputs_dir=writing, store=runner.store)
    assert whole.outputs_dir == str(writing) and whole.final_image.path == str(writing / "final.png")
    card = await summary_of(runner, record, live=False)
    chosen = trajectory["rounds"][trajectory["best_round"] - 1]
    assert trajectory["best_round"] == summary["best_round"] == result.best_round == card["best_round"] == 2
    assert chosen["semantic"] == summary["semantic"] == result.rounds[1].semantic == card["semantic"] == 9
    for wire, view in zip(result.rounds, trajectory["rounds"], strict=True):
        assert wire.model_dump(exclude={"image", "candidates", "usage"}) == {
            k: view[k] for k in RunResult.model_fields["rounds"].annotation.__args__[0].model_fields  # type: ignore[union-attr]
            if k not in {"image", "candidates", "usage"}
        }
        assert wire.usage.model_dump() == view["usage"] and wire.image.sha256 == view["image"]["sha256"]
    folder = record_trajectory(state, runner.store, tmp_path / "recorded")
    ((_, recorded),) = list(read_trajectories(folder.parent))
    assert [{**r, "image": None} for r in recorded["rounds"]] == [{**r, "image": None} for r in trajectory["rounds"]]


async def test_thinkedit_runs_lists_each_run_from_its_view(data_dir: Path, photo) -> None:
    """The listing reads records only; a stored usage written before a field existed still lists, priced."""
    from tests.cli import thinkedit
    from tests.fakes import ScriptedThinker, verdicts
    from tests.test_graph import run

    state, _, _, _, runner = await run(data_dir, photo, ScriptedThinker(verdicts((9, 9, "x"))), max_rounds=1)
    record = runner.registry.load(state.run_id)
    record.usage = {"edit_calls": 1, "images_edited": 1, "thinker_input_tokens": 1200, "cost_usd": 0.0123}
    runner.registry.save(record)
    runner.registry.flush(record.run_id)
    listed = thinkedit("runs", data_dir=data_dir, timeout=120)
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.startswith(state.run_id))
    assert "done" in line and "$0.0123 1,200t" in line and record.instruction[:20] in line


def test_app_extras_that_would_pass_the_size_cap_lose_their_rounds_and_the_result_stays_under_it() -> None:
    """The bound tool_result computes from the parts' lengths keeps the real serialised result under the cap."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    from thinkedit.servers.mcp.viewer import FOR_APPS

    ref = {"resource_uri": "thinkedit://runs/r1/source.png", "path": "/tmp/x.png", "width": 8, "height": 8, "sha256": "0" * 64}
    model = results.RenderedRun(run_id="r1", status="done", instruction='a "hat"\n\\ on the cat', source_image=ref)
    model._extras = {"editor": "e", "rounds": {"1": {"raw_thinker_output": "\u00e9\"\\\n" * 120_000}}}
    noise = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (900, 900, 3), dtype=np.uint8)).save(noise, format="PNG")
    token = FOR_APPS.set(True)
    try:
        big = results.tool_result(model, "summary", image=noise.getvalue())
    finally:
        FOR_APPS.reset(token)
    assert len(big.model_dump_json(by_alias=True, exclude_none=True).encode()) < results.MAX_RESULT_BYTES
    assert big.meta[VIEW_META] == {"editor": "e"}  # the raw outputs went, the rest stayed
    assert base64.b64decode([b for b in big.content if b.type == "image"][0].data)  # the preview stayed
    plain = results.tool_result(model, "summary")  # outside a run tool for an Apps client: no extras
    assert plain.meta is None and json.loads(plain.content[-1].text) == plain.structured_content


async def test_recording_again_never_leaves_a_half_deleted_recording(
    data_dir: Path, photo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed while it replaces a recording leaves a whole one (the new) under the run's name."""
    import shutil

    from thinkedit.agent import recording
    from tests.fakes import ScriptedThinker, verdicts
    from tests.test_graph import run

    state, _, _, _, runner = await run(data_dir, photo, ScriptedThinker(verdicts((3, 4, "x"), (9, 8, "y"))), max_rounds=2)
    root = tmp_path / "recorded"
    recording.record_trajectory(state, runner.store, root)
    real_rmtree = shutil.rmtree

    def killed_midway(path, *args, **kwargs):  # removes one file of the folder, then the process dies
        next(Path(path).glob("round-*.png")).unlink()
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(recording.shutil, "rmtree", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        recording.record_trajectory(state, runner.store, root, extra={"attempt": 2})
    monkeypatch.setattr(recording.shutil, "rmtree", real_rmtree)
    ((folder, data),) = list(recording.read_trajectories(root))
    assert folder == root / state.run_id and data["attempt"] == 2  # the new recording, whole
    assert sorted(p.name for p in folder.iterdir()) == ["round-1.png", "round-2.png", "source.png", "trajectory.json"]


async def test_an_output_folder_reused_by_a_shorter_run_shows_only_its_rounds(data_dir: Path, photo, tmp_path: Path) -> None:
    from thinkedit.agent.viewer import write_outputs
    from tests.fakes import ScriptedThinker, verdicts
    from tests.test_graph import run

    out = tmp_path / "out"
    longer, *_, runner = await run(data_dir, photo, ScriptedThinker(verdicts((3, 4, "x"), (9, 8, "y"))), max_rounds=2)
    write_outputs(longer, runner.store, out)
    (out / "round-draft.png").write_bytes(b"mine")
    shorter, *_, runner = await run(data_dir, photo, ScriptedThinker(verdicts((9, 9, "x"))), max_rounds=1)
    write_outputs(shorter, runner.store, out)
    assert sorted(p.name for p in out.iterdir()) == [
        "final.png", "report.html", "round-1.png", "round-draft.png", "trajectory.json"]
    assert json.loads((out / "trajectory.json").read_text())["run_id"] == shorter.run_id


async def test_thinkedit_runs_keeps_a_long_run_id_apart_from_its_status(data_dir: Path, photo) -> None:
    from tests.cli import thinkedit
    from tests.fakes import ScriptedThinker, verdicts
    from tests.test_graph import run

    state, _, _, _, runner = await run(data_dir, photo, ScriptedThinker(verdicts((9, 9, "x"))), max_rounds=1)
    record = runner.registry.load(state.run_id)
    long_id = "eval-imgedit-d21b252d6bc76eea"  # what an evaluation names its runs
    runner.registry.save(record.model_copy(update={"run_id": long_id}))
    runner.registry.flush(long_id)
    listed = thinkedit("runs", data_dir=data_dir, timeout=120)
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.startswith(long_id))
    assert line.split()[:2] == [long_id, "done"], line  # the id stays a word of its own, to copy into `resume`
