"""Profiles load, validate, and yield to THINKEDIT_* environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from thinkedit.agent.settings import LoopSettings
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.profiles import available_profiles, load_profile


def test_every_packaged_profile_loads() -> None:
    names = available_profiles()
    assert {"tiny", "kontext", "qwen-image-edit", "longcat", "expert"} <= set(names)
    for name in names:
        profile = load_profile(name, env={})
        assert profile.editor.model and profile.thinker.model


def test_real_profiles_name_the_published_models() -> None:
    kontext = load_profile("kontext", env={})
    assert kontext.editor.model == "flux-kontext-dev"
    assert kontext.thinker.model == "appletea2333/EditThinker-8B"
    assert kontext.thinker.protocol == "editthinker"
    expert = load_profile("expert", env={})
    assert expert.thinker.backend == "chat-model" and expert.thinker.protocol == "expert"


def test_env_overrides() -> None:
    profile = load_profile("tiny", env={"THINKEDIT_THINKER_URL": "http://127.0.0.1:9/v1", "THINKEDIT_EDITOR_MODEL": "tiny-pix2pix"})
    assert profile.thinker.base_url == "http://127.0.0.1:9/v1"
    assert profile.editor.model == "tiny-pix2pix"


def test_profile_from_file_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "mine.toml"
    good.write_text('[editor]\nmodel = "tiny-pix2pix"\n[thinker]\nmodel = "tiny-qwen2.5-vl"\n[loop]\nmax_rounds = 2\n')
    assert load_profile(str(good), env={}).name == "mine"
    settings = LoopSettings.from_profile(str(good), seed=3)
    assert settings.max_rounds == 2 and settings.seed == 3
    misspelt = tmp_path / "bad.toml"
    misspelt.write_text('[editor]\nmodel = "x"\nstepz = 3\n[thinker]\nmodel = "y"\n')
    with pytest.raises(BadInputError, match="editor.stepz: Extra inputs are not permitted"):
        load_profile(str(misspelt), env={})
    elsewhere = tmp_path / "app.toml"  # some other program's settings, named by mistake (or by a client)
    elsewhere.write_text('db_password = "hunter2"\n')
    with pytest.raises(BadInputError) as refused:
        load_profile(str(elsewhere), env={})
    assert "db_password: Extra inputs are not permitted" in str(refused.value)
    assert "hunter2" not in str(refused.value)  # the file's values are not echoed back
    broken = tmp_path / "broken.toml"
    broken.write_text("[editor\n")
    with pytest.raises(BadInputError, match="not valid TOML"):
        load_profile(str(broken), env={})
    with pytest.raises(BadInputError, match="unknown profile"):
        load_profile("no-such-profile", env={})


def test_settings_defaults_follow_the_paper() -> None:
    settings = LoopSettings.from_profile("kontext")
    assert settings.max_rounds == 5
    assert (settings.semantic_threshold, settings.quality_threshold) == (8, 8)
    assert settings.edit_from == "source" and settings.selection == "best"
    assert LoopSettings.from_profile("tiny").max_rounds == 3
    assert LoopSettings.from_profile("tiny", max_rounds=4).max_rounds == 4
