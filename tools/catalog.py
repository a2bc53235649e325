"""Describe what can run: every known editor and thinker (``thinkedit models``) and every profile (``thinkedit profiles``)."""

from __future__ import annotations

from typing import Any

from thinkedit.tools.config import EditorConfig, ThinkerConfig
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.editors.models import EDITOR_MODELS, EditorModel
from thinkedit.tools.profiles import Profile, available_profiles, is_demo, load_profile, missing_keys
from thinkedit.tools.readiness import missing_pieces
from thinkedit.tools.registry import IN_PROCESS_BACKENDS

#: The photo size each editor's working size is shown for (a phone photo's, landscape).
EXAMPLE_PHOTO = (4000, 3000)
#: Thinker settings a profile may set; the rest of ThinkerConfig says where the model is.
_THINKER_SETTINGS = ("protocol", "prompt_file", "max_new_tokens", "temperature", "constrained", "max_image_side")


def catalog() -> dict[str, Any]:
    """Return ``{"editors": [...], "thinkers": [...]}``, JSON-ready."""
    profiles = {name: load_profile(name, env={}) for name in available_profiles()}
    editors = [_editor(entry, [n for n, p in profiles.items() if p.editor.model == entry.name])
               | {"here": _here("editor", EditorConfig(model=entry.name), profiles, local=entry.local)}
               for entry in EDITOR_MODELS.values()]
    thinkers: dict[str, dict[str, Any]] = {}
    for name, profile in profiles.items():
        config = profile.thinker
        item = thinkers.setdefault(config.model, _thinker(config) | {"here": _here("thinker", config, profiles, local="/" not in config.model)})
        item["profiles"].append(name)
        if config.backend not in item["backends"]:
            item["backends"].append(config.backend)
    return {"editors": editors, "thinkers": list(thinkers.values())}


def _here(kind: str, config: EditorConfig | ThinkerConfig, profiles: dict[str, Profile], *, local: bool) -> str | None:
    """Say whether this machine can run the model in process now (None: it runs elsewhere, behind an API)."""
    if config.backend not in IN_PROCESS_BACKENDS:
        return None
    needs = next((p.needs[kind] for p in profiles.values()  # type: ignore[index]
                  if kind in p.needs and getattr(p, kind).model == config.model), None)
    if needs is None and not local:
        return "unknown: no packaged profile states what it needs"
    lacking = missing_pieces([(kind, config, needs)])
    return "not ready: " + "; ".join(lacking) if lacking else "ready"


def _editor(entry: EditorModel, profiles: list[str]) -> dict[str, Any]:
    """Describe one editor table entry."""
    example: list[int] | None = None
    try:
        if entry.working_area is not None:  # without one, the profile's max_side decides
            example = list(entry.working_size(*EXAMPLE_PHOTO))
    except ModuleNotFoundError:  # Kontext's resolutions come from diffusers (the local extra)
        pass
    return {
        "name": entry.name,
        "pipeline": entry.pipeline_class,
        "hub_id": entry.hub_id,
        "local": entry.local,
        "profiles": profiles,
        "defaults": dict(entry.defaults),
        "settings": {
            name: {"type": spec.type.__name__, "min": spec.ge, "max": spec.le, "description": spec.description}
            for name, spec in entry.settings.items()
        },
        "working_area": entry.working_area,
        "working_size": entry.working_note,
        "working_size_for_4000x3000": example,
        "batchable": entry.batchable,
        "config_fields": {"working_area": _describe(EditorConfig, "working_area"),
                          "max_side": _describe(EditorConfig, "max_side")},
    }


def _thinker(config: ThinkerConfig) -> dict[str, Any]:
    """Describe a thinker as the packaged profiles configure it."""
    defaults = ThinkerConfig.model_fields
    return {
        "name": config.model,
        "backends": [config.backend],
        "protocol": config.protocol,
        "profiles": [],
        "defaults": {name: getattr(config, name) for name in _THINKER_SETTINGS},
        "settings": {name: _describe(ThinkerConfig, name) for name in _THINKER_SETTINGS},
        "working_area": f"images downscaled to {config.max_image_side} px on the longer side",
        "default_max_image_side": defaults["max_image_side"].default,
    }


def _describe(model: type, field: str) -> str:
    """Return a config field's description."""
    return model.model_fields[field].description or ""


def profile_rows() -> list[dict[str, object]]:
    """Describe every packaged profile and whether this machine can run it now (keys, GPU, disk, hub token)."""
    rows: list[dict[str, object]] = []
    for name in available_profiles():
        try:
            profile = load_profile(name)
        except BadInputError as exc:
            rows.append({"name": name, "ready": False, "error": str(exc)})
            continue
        missing = missing_keys(profile.editor, profile.thinker)
        lacking = profile.missing_here()
        rows.append({
            "name": name,
            "editor": f"{profile.editor.model} ({profile.editor.backend})",
            "thinker": f"{profile.thinker.model} ({profile.thinker.backend})",
            "keys": profile.key_envs(),
            "missing": missing,
            "priced": bool(profile.pricing),
            "not_ready": lacking,
            "demo": is_demo(profile.editor, profile.thinker),
            "ready": not missing and not lacking,
        })
    return rows
