"""What the MCP server was started with, and how a tool call's editor/thinker names map to configs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from thinkedit.agent.settings import LoopSettings
from thinkedit.agent.settings_check import check_settings
from thinkedit.tools.config import EditorConfig, ThinkerConfig, default_data_dir
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.profiles import Profile, available_profiles, load_profile, missing_keys
from thinkedit.tools.thinkers.providers import require_packages
from thinkedit.tools.types import parse_budget

#: Default limit of an image passed inline (data: URI) or fetched from a URL, decoded.
DEFAULT_MAX_IMAGE_BYTES = 8 * 1024 * 1024


@dataclass
class ServerConfig:
    """Hold the server's start-up options (the CLI fills it; tests may build one directly)."""

    profile: str = "tiny"
    editor_url: str | None = None
    editor_model: str | None = None
    thinker_url: str | None = None
    thinker_model: str | None = None
    data_dir: Path = field(default_factory=default_data_dir)
    #: The checkpointer URL (None: $THINKEDIT_CHECKPOINT_URL, else <data_dir>/checkpoints.sqlite).
    checkpoints_url: str | None = None
    #: A shared artifact store (None: $THINKEDIT_ARTIFACTS_URL, else <data_dir>/artifacts).
    artifacts_url: str | None = None
    roots: list[Path] | None = None
    allow_urls: bool = False
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    #: Resource links in results: by client name (``auto``), or for every client or none.
    resource_links: str = "auto"


def base_settings(config: ServerConfig) -> LoopSettings:
    """Build the server's default loop settings: its profile, with any HTTP backends swapped in.

    A URL maps to backend ``openai-images`` (editor) or ``chat-model`` (thinker) with that
    ``base_url``, exactly as ``thinkedit edit --editor/--thinker URL`` does.
    """
    settings = LoopSettings.from_profile(config.profile, data_dir=str(config.data_dir))
    settings = settings.with_servers(config.editor_url, config.editor_model, config.thinker_url, config.thinker_model)
    check_settings(settings)
    return settings


def server_models(config: ServerConfig) -> tuple[EditorConfig, ThinkerConfig]:
    """Return the editor and thinker the server uses when a call names none."""
    settings = base_settings(config)
    return settings.editor, settings.thinker


def all_profiles() -> list[Profile]:
    """Load every packaged profile."""
    return [load_profile(name) for name in available_profiles()]


def choose_editor(name: str | None, default: EditorConfig) -> EditorConfig:
    """Return the editor a call names (a profile or an editor model name), or the default."""
    if not name:
        return default
    for profile in all_profiles():
        if name in {profile.name, profile.editor.model}:
            return profile.editor
    choices = sorted({p.name for p in all_profiles()} | {p.editor.model for p in all_profiles()})
    raise BadInputError(f"unknown editor {name!r}; choose a profile or editor model from list_models: {choices}")


def choose_thinker(name: str | None, default: ThinkerConfig) -> ThinkerConfig:
    """Return the thinker a call names (a profile or a thinker model name), or the default."""
    if not name:
        return default
    for profile in all_profiles():
        if name in {profile.name, profile.thinker.model}:
            return profile.thinker
    choices = sorted({p.name for p in all_profiles()} | {p.thinker.model for p in all_profiles()})
    raise BadInputError(f"unknown thinker {name!r}; choose a profile or thinker model from list_models: {choices}")


def run_settings(
    base: LoopSettings,
    *,
    max_rounds: int | None = None,
    seed: int | None = None,
    editor: str | None = None,
    thinker: str | None = None,
    review: bool = False,
    budget: str | None = None,
) -> LoopSettings:
    """Apply one call's choices to the server's settings (review only when the call asks for it).

    A key the chosen editor or thinker needs and does not find is an error now, before any work.
    """
    update: dict[str, Any] = {
        "editor": choose_editor(editor, base.editor),
        "thinker": choose_thinker(thinker, base.thinker),
        "review": review,
    }
    if max_rounds is not None:
        update["max_rounds"] = max_rounds
    if seed is not None:
        update["seed"] = seed
    if budget is not None:
        update["budget"] = parse_budget(budget).model_dump()
    require_packages(update["thinker"].backend, update["thinker"].model)
    missing = missing_keys(update["editor"], update["thinker"])
    if missing:
        raise BadInputError(f"this run needs an API key in {', '.join('$' + k for k in missing)}, which is not set")
    try:
        return LoopSettings.model_validate(base.model_dump() | update)
    except ValidationError as exc:
        raise BadInputError(f"invalid run settings: {exc}") from exc
