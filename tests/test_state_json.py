"""Checkpoints hold JSON-native values only, so any LangGraph server (strict deserialization too) reads them."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from thinkedit.agent.checkpoint import memory_checkpointer
from thinkedit.agent.settings import LoopSettings
from thinkedit.agent.state import Round, merge_rounds, plain
from thinkedit.tools.types import ImageRef
from tests.fakes import ScriptedEditor, ScriptedThinker, verdicts
from tests.test_graph import make_runner, make_settings

REF = ImageRef(sha256="a" * 64, uri="/store/a.png", width=8, height=6)


def models_in(value: Any) -> list[str]:
    """Return the class names of every pydantic model nested in ``value``."""
    if isinstance(value, BaseModel):
        return [type(value).__name__]
    if isinstance(value, dict):
        return [name for item in value.values() for name in models_in(item)]
    if isinstance(value, list | tuple):
        return [name for item in value for name in models_in(item)]
    return []


def round_(index: int, instruction: str = "x") -> Round:
    return Round(index=index, instruction=instruction, seed=0, image=REF)


def test_merge_rounds_takes_dicts_and_models_and_gives_dicts() -> None:
    old = [round_(1), plain(round_(2))]  # a checkpoint from before (models) beside one decoded as dicts
    merged = merge_rounds(old, [plain(round_(2, "again")), round_(3)])
    assert [(r["index"], r["instruction"]) for r in merged] == [(1, "x"), (2, "again"), (3, "x")]
    assert models_in(merged) == [] and json.loads(json.dumps(merged)) == merged
    assert merge_rounds(None, None) == []


async def test_every_checkpoint_holds_json_native_values(data_dir, photo) -> None:
    saver = memory_checkpointer()
    script = verdicts((3, 3, "a red hat"), (9, 9, "x"))
    runner = make_runner(data_dir, ScriptedEditor(), ScriptedThinker(script), checkpointer=saver)
    record = runner.prepare(photo, "make it red", make_settings(data_dir, review=True))
    await runner.start(record)
    final = await runner.resume(record.run_id, review={"decision": "approve"})
    assert final is not None and final.status == "done" and len(final.rounds) == 2
    seen = 0
    async for saved in saver.alist({"configurable": {"thread_id": record.run_id}}):
        values = saved.checkpoint["channel_values"]
        for channel, value in values.items():
            assert models_in(value) == [], (channel, models_in(value))
        writes = [value for _, _, value in saved.pending_writes or []]
        assert models_in(writes) == []
        seen += 1
    assert seen > 5


async def test_a_checkpoint_saved_with_models_still_resumes(data_dir, photo) -> None:
    """Checkpoints written before the state was JSON-native hold our models; a resume reads them."""
    saver = memory_checkpointer()
    editor = ScriptedEditor()
    runner = make_runner(data_dir, editor, ScriptedThinker(verdicts((3, 3, "a red hat"), (9, 9, "x"))),
                         checkpointer=saver)
    record = runner.prepare(photo, "make it red", make_settings(data_dir, review=True))
    await runner.start(record)
    config = {"configurable": {"thread_id": record.run_id}}
    saved = await saver.aget_tuple(config)
    models = {"source": ImageRef.model_validate, "settings": LoopSettings.model_validate,
              "rounds": lambda rounds: [Round.model_validate(r) for r in rounds]}
    checkpoint = dict(saved.checkpoint)
    # Such checkpoints held the run's settings too (the record is their one copy now).
    old_values = {**saved.checkpoint["channel_values"], "settings": record.settings.model_dump()}
    checkpoint["channel_values"] = {k: models[k](v) if k in models else v for k, v in old_values.items()}
    versions = saved.checkpoint["channel_versions"]
    checkpoint["channel_versions"] = {**versions, "settings": versions["source"]}
    assert set(models_in(checkpoint["channel_values"])) == {"ImageRef", "LoopSettings", "Round"}
    await saver.aput(saved.parent_config, checkpoint, saved.metadata, checkpoint["channel_versions"])

    final = await runner.resume(record.run_id, review="approve")
    assert final is not None and final.status == "done"
    assert [r.instruction for r in final.rounds] == ["make it red", "a red hat"]
    assert final.final_image == final.rounds[-1].image and len(editor.calls) == 2


def test_every_type_older_checkpoints_may_hold_is_named_where_it_lives() -> None:
    """Checkpoints from before the state was JSON-native hold our models: each must load as itself, not a dict."""
    import importlib

    from thinkedit.agent.checkpoint import STATE_TYPES, serializer

    codec = serializer()
    for module, name in STATE_TYPES:
        cls = getattr(importlib.import_module(module), name, None)
        assert isinstance(cls, type) and cls.__module__ == module, f"{module}.{name} is not where it is named"
    from thinkedit.agent.settings import SettingsInput

    assert isinstance(codec.loads_typed(codec.dumps_typed(SettingsInput(max_rounds=2))), SettingsInput)
