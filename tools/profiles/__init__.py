"""Named editor + thinker pairs (TOML package data), overridable by ``THINKEDIT_*`` env vars."""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from thinkedit.tools.config import EditorConfig, ThinkerConfig
from thinkedit.tools.errors import BadInputError, problems
from thinkedit.tools.locations import available_profiles
from thinkedit.tools.readiness import SideNeeds, missing_pieces
from thinkedit.tools.types import ModelPrice

#: What a run of the random-weight demo models (the tiny profiles) says wherever its result is shown.
DEMO_NOTE = (
    "Demo models: random-weight miniatures built on this machine, so the pictures are noise and the scores mean nothing."
)

#: Environment variables that override a profile, mapped to (section, field).
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "THINKEDIT_EDITOR_BACKEND": ("editor", "backend"),
    "THINKEDIT_EDITOR_MODEL": ("editor", "model"),
    "THINKEDIT_EDITOR_PATH": ("editor", "path"),
    "THINKEDIT_EDITOR_URL": ("editor", "base_url"),
    "THINKEDIT_EDITOR_DEVICE": ("editor", "device"),
    "THINKEDIT_THINKER_BACKEND": ("thinker", "backend"),
    "THINKEDIT_THINKER_MODEL": ("thinker", "model"),
    "THINKEDIT_THINKER_PATH": ("thinker", "path"),
    "THINKEDIT_THINKER_URL": ("thinker", "base_url"),
    "THINKEDIT_THINKER_DEVICE": ("thinker", "device"),
    "THINKEDIT_THINKER_PROMPT_FILE": ("thinker", "prompt_file"),
}


class Profile(BaseModel):
    """An editor, a thinker and loop defaults that belong together."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    editor: EditorConfig
    thinker: ThinkerConfig
    loop: dict[str, Any] = Field(default_factory=dict, description="Defaults for LoopSettings fields.")
    pricing: dict[str, ModelPrice] = Field(
        default_factory=dict, description="List prices by model name, for the cost estimate of each round."
    )
    needs: dict[Literal["editor", "thinker"], SideNeeds] = Field(
        default_factory=dict, description="What the full-size in-process models take (GPU memory, disk, licence)."
    )

    def key_envs(self) -> list[str]:
        """Return the environment variables this profile's editor and thinker take their keys from."""
        return required_keys(self.editor, self.thinker)

    def missing_here(
        self, editor: EditorConfig | None = None, thinker: ThinkerConfig | None = None, env: dict[str, str] | None = None
    ) -> list[str]:
        """Return what this machine lacks to run the profile's in-process models (default: as the profile sets them).

        The needs of a side apply while it runs the profile's model; another model is only checked for torch.
        """
        sides = [(kind, config or own, self.needs.get(kind) if (config or own).model == own.model else None)
                 for kind, config, own in (("editor", editor, self.editor), ("thinker", thinker, self.thinker))]
        return missing_pieces(sides, env)


def is_demo(editor: EditorConfig, thinker: ThinkerConfig) -> bool:
    """Tell whether the editor or the thinker is a random-weight miniature (built locally, never downloaded)."""
    from thinkedit.tools.thinkers.tiny import TINY_BUILDERS

    return is_demo_editor(editor) or (thinker.model in TINY_BUILDERS and not thinker.path)


def is_demo_editor(editor: EditorConfig) -> bool:
    """Tell whether the editor is a random-weight miniature (its pictures are noise)."""
    from thinkedit.tools.editors.models import EDITOR_MODELS

    entry = EDITOR_MODELS.get(editor.model)
    return entry is not None and entry.local and not editor.path


def required_keys(editor: EditorConfig, thinker: ThinkerConfig) -> list[str]:
    """Return the key variables a pair of backends needs (a local server needs none)."""
    from thinkedit.tools.thinkers.providers import default_key_env

    keys = [editor.api_key_env] if editor.api_key_env else []
    if editor.backend == "openai-gpt-image" and not editor.api_key_env:
        keys.append("OPENAI_API_KEY")
    if editor.backend == "replicate" and not editor.api_key_env:
        keys.append("REPLICATE_API_TOKEN")
    if thinker.backend == "chat-model":
        key = thinker.api_key_env or default_key_env(thinker.model, thinker.base_url)
        if key:
            keys.append(key)
    return list(dict.fromkeys(keys))


def missing_keys(editor: EditorConfig, thinker: ThinkerConfig, env: dict[str, str] | None = None) -> list[str]:
    """Return the key variables the pair needs that are unset (or empty) in ``env``."""
    env = dict(os.environ if env is None else env)
    return [key for key in required_keys(editor, thinker) if not env.get(key)]


def load_profile(name: str, *, env: dict[str, str] | None = None) -> Profile:
    """Load a packaged profile by name (or a TOML file by path) and apply env overrides."""
    env = dict(os.environ if env is None else env)
    if name.endswith(".toml"):
        path = Path(name)
        if not path.is_file():
            raise BadInputError(f"profile file not found: {path}")
        text = path.read_text("utf-8")
        name = path.stem
    else:
        resource = resources.files("thinkedit.tools.profiles").joinpath(f"{name}.toml")
        if not resource.is_file():
            raise BadInputError(f"unknown profile {name!r}; choose from {available_profiles()}")
        text = resource.read_text("utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"profile {name!r} is not valid TOML: {exc}") from exc
    for var, (section, field) in ENV_OVERRIDES.items():
        if env.get(var):
            data.setdefault(section, {})[field] = env[var]
    data.setdefault("name", name)
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise BadInputError(f"profile {name!r} is invalid: {problems(exc)}") from None
