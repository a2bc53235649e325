"""Loop settings: the LangGraph runtime context every run carries (never a global)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from thinkedit.tools.config import EditorConfig, ThinkerConfig, default_data_dir
from thinkedit.tools.profiles import load_profile
from thinkedit.tools.thinkers.providers import key_env_for, split_model
from thinkedit.tools.types import Budget, ModelPrice, price_for

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


class LoopSettings(BaseModel):
    """Say which editor and thinker to use and when to stop; passed as runtime context."""

    model_config = ConfigDict(extra="forbid")

    profile: str | None = Field(
        default=None,
        description="Profile that supplies the editor, the thinker and loop defaults not given here "
        "($THINKEDIT_PROFILE, else 'tiny').",
    )
    editor: EditorConfig = Field(description="The editor backend and model (default: the profile's).")
    thinker: ThinkerConfig = Field(description="The thinker backend and model (default: the profile's).")
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

    @model_validator(mode="before")
    @classmethod
    def _fill_from_profile(cls, data: Any) -> Any:
        """Take what the caller left out (editor, thinker, loop defaults) from the profile."""
        if not isinstance(data, dict):
            return data
        if "editor" in data and "thinker" in data and (not data.get("profile") or cls.model_fields.keys() <= data.keys()):
            return data  # already resolved (a dump, a checkpoint): the profile's TOML is not read again
        name = data.get("profile") or os.environ.get("THINKEDIT_PROFILE") or "tiny"
        loaded = load_profile(name)
        defaults: dict[str, Any] = {
            "editor": loaded.editor, "thinker": loaded.thinker, "pricing": loaded.pricing, **loaded.loop
        }
        return {**defaults, **{k: v for k, v in data.items() if v is not None}, "profile": name}

    @model_validator(mode="after")
    def _budget_is_priced(self) -> LoopSettings:
        """Refuse a dollar budget when the price of the editor or the thinker is unknown."""
        if self.budget is not None and self.budget.usd is not None:
            missing = [m for m in (self.editor.model, self.thinker.model) if price_for(self.pricing, m) is None]
            if missing:
                raise ValueError(
                    f"a dollar budget needs a price for {', '.join(missing)} in the profile's [pricing] "
                    "(or give the budget in tokens)"
                )
        return self

    @model_validator(mode="after")
    def _paper_loop(self) -> LoopSettings:
        """In the paper's mode, fix what its loop has no choice about (selection, edit source, seeds, K)."""
        if self.loop_mode == "paper":
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

    def with_servers(
        self,
        editor_url: str | None = None,
        editor_model: str | None = None,
        thinker_url: str | None = None,
        thinker_model: str | None = None,
    ) -> LoopSettings:
        """Point the editor and/or thinker at servers: a URL switches that side to its HTTP backend."""
        editor, thinker = self.editor, self.thinker
        if editor_url and editor.backend in HOSTED_EDITOR_BACKENDS:
            # A hosted API's own client, pointed elsewhere (a proxy, a compatible endpoint): same backend.
            url = _api_root(editor_url) if editor.backend in VERSIONED_CLIENT_BACKENDS else editor_url
            editor = editor.model_copy(update={"base_url": url})
        elif editor_url:
            # Loading options belong to the server now; the profile's model name and settings still apply.
            editor = editor.model_copy(
                update={"backend": "openai-images", "base_url": editor_url, "path": None, "device": None, "dtype": None}
            )
        if editor_model:
            editor = editor.model_copy(update={"model": editor_model})
        if thinker_url:
            thinker = thinker.model_copy(
                update={"backend": "chat-model", "base_url": thinker_url, "path": None, "device": None, "dtype": None}
            )
        if thinker_model:
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
            thinker = thinker.model_copy(update=update)
        return self.model_copy(update={"editor": editor, "thinker": thinker})

    @classmethod
    def from_profile(cls, profile: str = "tiny", **overrides: Any) -> LoopSettings:
        """Build settings from a named profile, then apply non-None ``overrides``."""
        return cls.model_validate({**overrides, "profile": profile})
