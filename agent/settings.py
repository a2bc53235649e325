"""A run's settings and inputs: ``resolve_settings`` turns profile + environment + overrides into LoopSettings.

``LoopSettings`` is the LangGraph runtime context every run carries (never a global). It is built
from complete data: by ``resolve_settings`` (the one reader of a run's profile TOML and of the
``THINKEDIT_*`` settings in the environment) or from a stored dump; its validators only check values.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import (
    BaseModel, ConfigDict, Field, FieldSerializationInfo, ModelWrapValidatorHandler, field_serializer, model_validator,
)

from thinkedit.tools.config import EditorConfig, ThinkerConfig, default_data_dir
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.locations import DEFAULT_PROFILE, default_profile
from thinkedit.tools.profiles import Profile, load_profile
from thinkedit.tools.safenames import ALLOW_ROOT_ENV, under_roots
from thinkedit.tools.secrets import mask_url
from thinkedit.tools.types import Budget, ModelPrice, price_for

if TYPE_CHECKING:
    from PIL.Image import Image

    from thinkedit.tools.store import ArtifactStore
    from thinkedit.tools.types import ImageRef

log = logging.getLogger(__name__)

#: Overrides of ``resolve_settings`` that point a side at a server (see ``LoopSettings.with_servers``).
SERVER_OPTIONS = ("editor_url", "editor_model", "thinker_url", "thinker_model")
ConfigT = TypeVar("ConfigT", EditorConfig, ThinkerConfig)

#: ``thinkedit://artifacts/<sha256>.png`` names an image in the artifact store by content.
ARTIFACT_URI = re.compile(r"^thinkedit://artifacts/([0-9a-f]{64})(?:\.png)?$")

#: Editor backends that call a hosted API through its own client; a URL only moves their endpoint.
HOSTED_EDITOR_BACKENDS = frozenset({"openai-gpt-image", "replicate"})

#: Backends whose clients add the API version to the path themselves (Replicate's /v1/...).
VERSIONED_CLIENT_BACKENDS = frozenset({"replicate"})


def _api_root(url: str) -> str:
    """Drop a trailing ``/v1`` (the CLI adds it to bare URLs) for clients that add their own version path.

    Anthropic's, Google's and Replicate's SDKs take the API root and append ``/v1/...`` or
    ``/v1beta/...``; OpenAI's take the ``/v1`` base.
    """
    trimmed = url.rstrip("/")
    return trimmed[: -len("/v1")] if trimmed.endswith("/v1") else trimmed


EditFrom = Literal["source", "previous"]
Selection = Literal["best", "last"]
SeedPolicy = Literal["fixed", "increment"]
LoopMode = Literal["thinkedit", "paper"]

#: What ``loop_mode = "paper"`` fixes, as the paper's public inference code runs the loop (DESIGN §12).
PAPER_LOOP = {"selection": "last", "edit_from": "source", "seed_policy": "fixed", "candidates": 1,
              "semantic_threshold": 8.0, "quality_threshold": 8.0}


#: The serialization context of what is kept on disk (a run record): secrets in URLs are masked there.
STORED = {"stored": True}


class LoopSettings(BaseModel):
    """Say which editor and thinker to use and when to stop; passed as runtime context."""

    model_config = ConfigDict(extra="forbid")

    profile: str | None = Field(
        default=None,
        description="The profile the editor, the thinker and the loop defaults came from "
        "(resolve_settings: the one given, else $THINKEDIT_PROFILE, else 'tiny').",
    )
    editor: EditorConfig = Field(description="The editor backend and model.")
    thinker: ThinkerConfig = Field(description="The thinker backend and model.")
    max_rounds: int = Field(default=5, ge=1, le=50, description="At most this many edits (the paper: 5).")
    semantic_threshold: float = Field(default=8.0, ge=0, le=10, description="Stop once semantic reaches this...")
    quality_threshold: float = Field(default=8.0, ge=0, le=10, description="...and quality reaches this.")
    edit_from: EditFrom = Field(
        default="source",
        description="'source' re-edits the source image each round (the paper); 'previous' chains edits.",
    )
    seed: int = Field(default=0, ge=0, description="Seed of the first round's edit.")
    seed_policy: SeedPolicy = Field(
        default="fixed", description="'fixed' reuses the seed every round; 'increment' adds the round index."
    )
    candidates: int = Field(
        default=1,
        ge=1,
        le=8,
        description="Best-of-K: edit K candidates per round in one batched call (seeds seed..seed+K-1), "
        "judge them all and keep the best.",
    )
    selection: Selection = Field(
        default="best", description="'best' returns the highest-scoring round; 'last' the final one (the paper)."
    )
    review: bool = Field(default=False, description="Pause before each refinement for a person to review.")
    budget: Budget | None = Field(
        default=None, description="Stop before a round that would spend more than this (dollars or tokens)."
    )
    pricing: dict[str, ModelPrice] = Field(
        default_factory=dict, description="Price per model name (the profile's [pricing]), for cost estimates."
    )
    loop_mode: LoopMode = Field(
        default="thinkedit",
        description="'paper' runs the published loop exactly: the last image returned and never critiqued, "
        "the public stop rule, re-edits from the source, one candidate (our default: 'thinkedit').",
    )
    data_dir: str = Field(
        default_factory=lambda: str(default_data_dir()),
        description="Where artifacts, checkpoints and run records live.",
    )
    artifacts_url: str | None = Field(
        default=None,
        description="A shared artifact store (local dir or fsspec URL: file://, s3://...), "
        "so nodes in any process use the same one (default: <data_dir>/artifacts).",
    )

    @field_serializer("artifacts_url", when_used="json")
    def _url_without_secrets(self, url: str | None, info: FieldSerializationInfo) -> str | None:
        """Write the store's URL with its password masked where it is kept (``STORED``: a run record).

        Only there: settings that go on to open the store (a graph's state) need the URL itself. A run
        resumed from its record takes the resuming process's own URL (``Runner.resume``).
        """
        return mask_url(url, known=False) if url and info.context == STORED else url

    @model_validator(mode="wrap")
    @classmethod
    def _check(cls, data: Any, handler: ModelWrapValidatorHandler[LoopSettings]) -> LoopSettings:
        """Check new data once: an instance (nested in a record, a state) was checked when it was made."""
        if isinstance(data, cls):
            return data
        return handler(data)._checked()

    def _checked(self) -> LoopSettings:
        """Refuse a dollar budget without prices; in the paper's mode, fix what its loop has no choice about."""
        if self.budget is not None and self.budget.usd is not None:
            missing = [m for m in (self.editor.model, self.thinker.model) if price_for(self.pricing, m) is None]
            if missing:
                raise ValueError(
                    f"a dollar budget needs a price for {', '.join(missing)} in the profile's [pricing] "
                    "(or give the budget in tokens)"
                )
        if self.loop_mode == "paper":  # selection, edit source, seeds, K: the published loop's own
            for name, value in PAPER_LOOP.items():
                object.__setattr__(self, name, value)
        return self

    @property
    def artifacts_dir(self) -> Path:
        """Return the data dir's own artifact store root (see ``artifacts_location`` for the one in use)."""
        return Path(self.data_dir).expanduser() / "artifacts"

    @property
    def artifacts_location(self) -> str | Path:
        """Return the artifact store the run uses: the shared URL, else the data dir's store."""
        return self.artifacts_url or self.artifacts_dir

    def seed_for(self, round_index: int) -> int:
        """Return the edit seed of 1-based round ``round_index`` under the seed policy."""
        return self.seed + (round_index - 1 if self.seed_policy == "increment" else 0)

    def thinker_seed_for(self, round_index: int) -> int:
        """Return the thinker's sampling seed for a round: reproducible per run, distinct per round."""
        return self.seed * 1000 + round_index

    def updated(self, **changes: Any) -> LoopSettings:
        """Return these settings with ``changes``, validated once (``model_copy`` would skip the checks)."""
        return LoopSettings.model_validate({**self.model_dump(), **changes}) if changes else self

    def with_servers(
        self,
        editor_url: str | None = None,
        editor_model: str | None = None,
        thinker_url: str | None = None,
        thinker_model: str | None = None,
    ) -> LoopSettings:
        """Point the editor and/or thinker at servers: a URL switches that side to its HTTP backend."""
        editor, thinker = point_at_servers(self.editor, self.thinker, editor_url, editor_model, thinker_url, thinker_model)
        return self.model_copy(update={"editor": editor, "thinker": thinker})

    @classmethod
    def from_profile(cls, profile: str | None = DEFAULT_PROFILE, **overrides: Any) -> LoopSettings:
        """Resolve settings from a named profile and non-None ``overrides`` (``resolve_settings``)."""
        return resolve_settings(profile, **overrides)


def _with(config: ConfigT, update: dict[str, Any]) -> ConfigT:
    """Return ``config`` with ``update`` applied and validated: a server URL's password is masked from then on."""
    return type(config).model_validate({**config.model_dump(), **update})


def point_at_servers(
    editor: EditorConfig,
    thinker: ThinkerConfig,
    editor_url: str | None = None,
    editor_model: str | None = None,
    thinker_url: str | None = None,
    thinker_model: str | None = None,
) -> tuple[EditorConfig, ThinkerConfig]:
    """Return the editor and thinker pointed at servers: a URL switches that side to its HTTP backend."""
    if editor_url and editor.backend in HOSTED_EDITOR_BACKENDS:
        # A hosted API's own client, pointed elsewhere (a proxy, a compatible endpoint): same backend.
        url = _api_root(editor_url) if editor.backend in VERSIONED_CLIENT_BACKENDS else editor_url
        editor = _with(editor, {"base_url": url})
    elif editor_url:
        # Loading options belong to the server now; the profile's model name and settings still apply.
        editor = _with(
            editor, {"backend": "openai-images", "base_url": editor_url, "path": None, "device": None, "dtype": None}
        )
    if editor_model:
        editor = _with(editor, {"model": editor_model})
    if thinker_url:
        thinker = _with(
            thinker, {"backend": "chat-model", "base_url": thinker_url, "path": None, "device": None, "dtype": None}
        )
    if thinker_model:
        from thinkedit.tools.thinkers.providers import key_env_for, split_model

        update: dict[str, Any] = {"model": thinker_model}
        provider = split_model(thinker_model)[0]
        switching = provider != split_model(thinker.model)[0] or (
            ":" in thinker_model and thinker.backend != "chat-model"
        )
        if switching:
            # A general model of another provider: its own API and key variable, the expert protocol
            # (EditThinker's tags come from the fine-tuned model only); a --thinker URL still wins.
            update |= {"backend": "chat-model", "api_key_env": key_env_for(thinker_model), "path": None,
                       "device": None, "dtype": None, "constrained": False, "protocol": "expert"}
            if not thinker_url:
                update["base_url"] = None
        if thinker_url and provider != "openai":
            update["base_url"] = _api_root(thinker_url)
        thinker = _with(thinker, update)
    return editor, thinker


def load_run_profile(profile: str | None = None, *, env: Mapping[str, str] = os.environ) -> Profile:
    """Read a run's profile: the name or TOML path given, else ``$THINKEDIT_PROFILE``, else tiny (with env overrides)."""
    return load_profile(profile or default_profile(env), env=dict(env))


def resolve_settings(
    profile: str | Profile | None = None, *, env: Mapping[str, str] = os.environ, **overrides: Any
) -> LoopSettings:
    """Turn a profile, the environment and overrides into a run's settings, validated once.

    ``profile`` is a name, a TOML path, or a ``Profile`` the caller already read with
    ``load_run_profile`` (so it reads the file once). Overrides that are None are left to the
    profile; ``editor_url``, ``editor_model``, ``thinker_url`` and ``thinker_model`` point a side
    at a server as ``LoopSettings.with_servers`` does.
    """
    loaded = profile if isinstance(profile, Profile) else load_run_profile(profile, env=env)
    given = {k: v for k, v in overrides.items() if v is not None}
    servers = {k: given.pop(k) for k in SERVER_OPTIONS if k in given}
    editor, thinker = point_at_servers(given.pop("editor", loaded.editor), given.pop("thinker", loaded.thinker),
                                       **servers)
    name = profile if isinstance(profile, str) and profile else loaded.name
    return LoopSettings.model_validate(
        {"pricing": loaded.pricing, **loaded.loop, **given, "editor": editor, "thinker": thinker, "profile": name}
    )


class SettingsInput(BaseModel):
    """Choose a profile and override loop settings from a run's input (Studio's form)."""

    model_config = ConfigDict(extra="forbid")

    profile: str | None = Field(default=None, description="Profile name ($THINKEDIT_PROFILE, else 'tiny').")
    max_rounds: int | None = Field(default=None, ge=1, le=50, description="At most this many edits.")
    semantic_threshold: float | None = Field(default=None, ge=0, le=10, description="Semantic score to stop at.")
    quality_threshold: float | None = Field(default=None, ge=0, le=10, description="Quality score to stop at.")
    edit_from: EditFrom | None = Field(default=None, description="'source' (the paper) or 'previous'.")
    seed: int | None = Field(default=None, ge=0, description="Seed of the first edit.")
    seed_policy: SeedPolicy | None = Field(default=None, description="'fixed' or 'increment'.")
    selection: Selection | None = Field(default=None, description="'best' or 'last' round as the result.")
    review: bool | None = Field(default=None, description="Pause before each refinement for review.")
    budget: Budget | None = Field(
        default=None, description="Stop before a round that would exceed this (usd and/or tokens)."
    )
    loop_mode: LoopMode | None = Field(
        default=None, description="'paper': the published loop exactly (last image, uncritiqued); 'thinkedit'."
    )


def run_settings(context: Any, given: SettingsInput | None = None) -> LoopSettings:
    """Return the settings of a graph run from its runtime context and its input's overrides.

    A ``LoopSettings`` context is used as it is; a mapping, pydantic model or dataclass (a parent
    graph's own context) gives the loop settings it names, and the profile fills in the rest. A
    profile named in the input's overrides wins over the context's.
    """
    overrides = given.model_dump(exclude_none=True) if given is not None else {}
    if isinstance(context, LoopSettings) and "profile" not in overrides:
        return context.updated(**overrides)
    fields = {} if "profile" in overrides else context_fields(context)
    if "editor" in fields and "thinker" in fields:  # a complete dump (a parent's context in plain data)
        return LoopSettings.model_validate({**fields, **overrides})
    merged = {**fields, **overrides}
    return resolve_settings(merged.pop("profile", None), **merged)


def context_fields(context: Any) -> dict[str, Any]:
    """Return the loop settings a run context carries, whatever shape the caller gave it in.

    A ``LoopSettings`` gives all its fields; a mapping, a pydantic model or a dataclass (a parent
    graph's own context) gives the keys that are loop settings, and the rest belong to the parent.
    """
    if context is None:
        return {}
    if isinstance(context, LoopSettings):
        return context.model_dump()
    if isinstance(context, Mapping):
        data = dict(context)
    elif hasattr(context, "model_dump"):
        data = context.model_dump()
    elif dataclasses.is_dataclass(context) and not isinstance(context, type):
        data = dataclasses.asdict(context)
    else:
        raise BadInputError(
            f"the run context must be LoopSettings or a dict of its fields, not {type(context).__name__}"
        )
    known = {k: v for k, v in data.items() if k in LoopSettings.model_fields}
    if len(known) < len(data):
        log.debug("run context keys that are not loop settings, left to the parent: %s", sorted(set(data) - set(known)))
    return known


def artifact_uri(ref: ImageRef) -> str:
    """Return the ``thinkedit://artifacts/…`` URI of a stored image."""
    return f"thinkedit://artifacts/{ref.sha256}.png"


def input_roots(data_dir: str | None = None) -> list[Path]:
    """Return the folders a graph server reads client-named files from: its working directory, the data dir
    (``data_dir``), and those in ``$THINKEDIT_ALLOW_ROOT``; never a filesystem root by default."""
    here = Path.cwd().resolve()
    roots = [] if here == Path(here.anchor) else [here]
    if data_dir:
        roots.append(Path(data_dir).expanduser())
    extra = os.environ.get(ALLOW_ROOT_ENV, "")
    return roots + [Path(part).expanduser() for part in extra.split(os.pathsep) if part.strip()]


def resolve_image(name: str, store: ArtifactStore, roots: list[Path] | None = None) -> Image:
    """Load the image a run's input names: an artifact URI or a local file path (under ``roots``, when given)."""
    from thinkedit.tools.images import load_image

    if name.startswith("thinkedit://"):
        match = ARTIFACT_URI.match(name)
        if match is None:
            raise BadInputError(f"unsupported image URI {name!r}; expected thinkedit://artifacts/<sha256>.png")
        digest = match.group(1)
        try:
            ref = store.lookup(digest)
        except BadInputError:
            raise BadInputError(f"no stored image {digest[:12]}… in {store.url}") from None
        return store.get(ref)
    if re.match(r"^[a-z][a-z0-9+.-]*://", name):
        raise BadInputError(f"fetching URLs is not supported: {name!r}; give a local path")
    return load_image(name if roots is None else under_roots(name, roots))
