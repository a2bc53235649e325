"""Settings are resolved once, at the edge: validated once, stored once, the profile read once."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncio

import pytest

from thinkedit.agent.checkpoint import memory_checkpointer
from thinkedit.agent.runs import RunRegistry
from thinkedit.agent.settings import LoopSettings
from thinkedit.servers.cli import main
from thinkedit.tools import profiles
from thinkedit.tools.errors import BadInputError
from tests.conftest import EXAMPLES
from tests.fakes import ScriptedEditor, ScriptedThinker, verdicts
from tests.test_graph import make_runner


@contextmanager
def calls_of(func: Callable[..., Any]) -> Iterator[list[str]]:
    """Spy on the real ``func`` in every thread: yield a list that gets one entry per call of it."""
    code, seen = func.__code__, []

    def hook(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is code:
            seen.append(threading.current_thread().name)

    threading.setprofile(hook)
    sys.setprofile(hook)
    try:
        yield seen
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]


def settings_validator() -> Callable[..., Any]:
    """Return the check every validation of new LoopSettings data runs, standalone or nested in another model."""
    return LoopSettings._checked


class CountingEditor(ScriptedEditor):
    """Note, at the first edit, how often the spied functions ran until then."""

    def __init__(self, **spies: list[str]) -> None:
        super().__init__()
        self.spies, self.at_first_edit = spies, {}

    async def edit(self, request: Any) -> Any:
        if not self.calls:
            self.at_first_edit = {name: len(seen) for name, seen in self.spies.items()}
        return await super().edit(request)


async def test_a_run_validates_its_settings_once_and_saves_its_record_once_before_the_first_edit(
    data_dir: Path, photo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fresh threads for the nodes' hops off the loop, so the spy sees them too.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(4))
    saves: list[str] = []
    real_save = RunRegistry.save
    monkeypatch.setattr(RunRegistry, "save", lambda self, record: (saves.append(record.status), real_save(self, record))[1])
    saver = memory_checkpointer()
    thinker = ScriptedThinker(verdicts((3, 3, "a red hat"), (9, 9, "x")))
    with calls_of(settings_validator()) as validated:
        editor = CountingEditor(validated=validated, saves=saves)
        runner = make_runner(data_dir, editor, thinker, checkpointer=saver)
        settings = LoopSettings.from_profile("tiny", data_dir=str(data_dir), max_rounds=3)
        record = runner.prepare(photo, "make it red", settings, source_name="cat.png")  # the gallery's upload name
        state = await runner.start(record)
        whole_run = len(validated)
    assert state is not None and state.status == "done" and len(editor.calls) == 2
    assert editor.at_first_edit == {"validated": 1, "saves": 1}
    assert whole_run == 1  # no node validates the settings again: they are the run's context
    # Stored once: the record holds them, the checkpoints do not.
    async for saved in saver.alist({"configurable": {"thread_id": record.run_id}}):
        assert "settings" not in saved.checkpoint["channel_values"]
    stored = runner.registry.load(record.run_id)
    assert stored.settings == settings and stored.source_name == "cat.png"
    assert state.settings == settings  # the state the Runner hands back carries the record's settings


def test_the_settings_validators_do_no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THINKEDIT_PROFILE", "no-such-profile")
    complete = {"editor": {"model": "e"}, "thinker": {"model": "t"}, "profile": "no-such-profile"}
    with calls_of(profiles.load_profile) as loaded:
        with pytest.raises(ValueError, match="editor"):  # incomplete data is refused, not filled in from a profile
            LoopSettings.model_validate({"max_rounds": 2})
        assert LoopSettings.model_validate(complete).profile == "no-such-profile"
    assert loaded == []


def test_edit_reads_its_profile_once(tmp_path: Path) -> None:
    # A profile this machine cannot run: `thinkedit edit` goes through every check that needs the profile.
    toml = tmp_path / "huge.toml"
    toml.write_text((Path(profiles.__file__).parent / "tiny.toml").read_text() + "\n[needs.editor]\ngpu_gib = 100000\n")
    with calls_of(profiles.load_profile) as loaded:
        code = main(["edit", str(EXAMPLES / "chelsea.png"), "add a hat", "--profile", str(toml),
                     "--data-dir", str(tmp_path / "data")])
    assert code == 2 and len(loaded) == 1


def test_resolve_settings_is_profile_then_environment_then_overrides() -> None:
    from thinkedit.agent.settings import resolve_settings

    env = {"THINKEDIT_PROFILE": "paper", "THINKEDIT_EDITOR_MODEL": "tiny-pix2pix"}
    settings = resolve_settings(env=env, max_rounds=2, seed=None)
    assert (settings.profile, settings.editor.model, settings.max_rounds, settings.seed) == ("paper", "tiny-pix2pix", 2, 0)
    assert resolve_settings("tiny", env={}).profile == "tiny"
    served = resolve_settings("tiny", env={}, editor_url="http://127.0.0.1:9/v1")
    assert (served.editor.backend, served.editor.base_url) == ("openai-images", "http://127.0.0.1:9/v1")
    with pytest.raises(BadInputError, match="unknown profile"):
        resolve_settings("no-such-profile", env={})


def test_a_graph_runs_settings_come_from_its_context_then_its_input(monkeypatch: pytest.MonkeyPatch) -> None:
    from thinkedit.agent.settings import resolve_settings, run_settings
    from thinkedit.agent.settings import SettingsInput

    monkeypatch.delenv("THINKEDIT_PROFILE", raising=False)
    resolved = resolve_settings("tiny", max_rounds=4)
    with calls_of(profiles.load_profile) as loaded:
        assert run_settings(resolved, None) is resolved  # a resolved context is the run's settings as it is
        assert run_settings(resolved, SettingsInput(seed=7)).seed == 7 and resolved.seed == 0
        assert run_settings(resolved.model_dump(), SettingsInput(max_rounds=2)).max_rounds == 2  # a complete dump
    assert loaded == []  # none of these reads a profile
    assert run_settings({"max_rounds": 2}, None).profile == "tiny"  # a partial context: the profile fills the rest
    assert run_settings(resolved, SettingsInput(profile="paper")).selection == "last"  # the input's profile wins
    assert run_settings(SettingsInput(max_rounds=2), SettingsInput(seed=3)).max_rounds == 2  # Studio's context
