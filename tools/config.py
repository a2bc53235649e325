"""Typed, validated descriptions of which editor and thinker to use (JSON-serialisable)."""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Where runs live by default: defined in a light module, named here too for the modules that use them.
from thinkedit.tools.locations import ARTIFACTS_URL_ENV, CHECKPOINT_URL_ENV, default_data_dir  # noqa: F401


def is_http_url(text: str) -> bool:
    """Say whether ``text`` is an http(s) URL with a host (what every server URL setting must be)."""
    from urllib.parse import urlsplit

    try:
        parsed = urlsplit(text)
        return parsed.scheme in ("http", "https") and bool(parsed.hostname)
    except ValueError:  # a malformed IPv6 host or port
        return False


def _masked_from_now_on(url: str) -> str:
    """Mask a server URL's password and secret query values from now on: no error, log line or view shows them."""
    from thinkedit.tools.secrets import register_secret, url_secrets

    register_secret(*url_secrets(url))
    return url


#: A server URL setting (``base_url``), whose credentials, if it holds any, are masked wherever it is shown.
ServerURL = Annotated[str, AfterValidator(_masked_from_now_on)]


def required_key(env_var: str, who: str) -> str:
    """Return the API key in ``$env_var`` (masked from now on, whatever its name), or refuse naming who needs it."""
    from thinkedit.tools.errors import BadInputError
    from thinkedit.tools.secrets import register_secret

    key = os.environ.get(env_var)
    if not key:
        raise BadInputError(f"{who} needs an API key in ${env_var}, which is not set")
    register_secret(key)
    return key


class EditorConfig(BaseModel):
    """Name an editor backend and the model it serves."""

    model_config = ConfigDict(extra="forbid")

    backend: str = Field(default="diffusers", description="Registry name: 'diffusers', 'openai-images', 'openai-gpt-image' or 'replicate'.")
    model: str = Field(description="Model name in the backend's table, e.g. 'flux-kontext-dev' or 'tiny-kontext'.")
    path: str | None = Field(
        default=None, description="Hub id or local directory to load from; defaults to the model table's entry."
    )
    base_url: ServerURL | None = Field(default=None, description="Server URL for HTTP backends.")
    api_key_env: str | None = Field(default=None, description="Environment variable holding the API key.")
    device: str | None = Field(default=None, description="Torch device ('cuda', 'cpu'); auto when unset.")
    dtype: str | None = Field(default=None, description="Torch dtype name ('bfloat16', 'float32'); per model when unset.")
    max_side: int | None = Field(
        default=None, gt=0, description="Downscale inputs so their longer side is at most this before editing."
    )
    working_area: int | None = Field(
        default=None,
        ge=16 * 16,
        description="Edit at about this many pixels (aspect kept), instead of the model's own working area.",
    )
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Overrides of the model's generation settings (validated by the backend)."
    )
    timeout_s: float | None = Field(
        default=None, gt=0, description="Seconds one call may take before it fails (default per backend)."
    )
    max_attempts: int = Field(
        default=3, ge=1, le=10, description="Calls in all on 429/5xx, waiting as the server's Retry-After asks."
    )


class ThinkerConfig(BaseModel):
    """Name a thinker backend, its model and the protocol it answers in."""

    model_config = ConfigDict(extra="forbid")

    backend: str = Field(default="transformers", description="Registry name: 'transformers' or 'chat-model'.")
    model: str = Field(description="Model name or hub id, e.g. 'appletea2333/EditThinker-8B' or 'tiny-qwen2.5-vl'; "
        "for 'chat-model' also 'provider:model' as init_chat_model reads it (anthropic:claude-…).",
    )
    path: str | None = Field(default=None, description="Local directory to load from, when not the model name.")
    protocol: Literal["editthinker", "expert"] = Field(
        default="editthinker", description="Answer format: EditThinker tags, or the expert JSON object."
    )
    prompt_file: str | None = Field(
        default=None,
        description="A prompt template of your own: ${...} placeholders, or EditThinker's {...} and <image> markers.",
    )
    base_url: ServerURL | None = Field(
        default=None, description="Server URL for 'chat-model' (an OpenAI-compatible server, or the provider's API)."
    )
    api_key_env: str | None = Field(default=None, description="Environment variable holding the API key.")
    device: str | None = Field(default=None, description="Torch device for in-process thinkers; auto when unset.")
    dtype: str | None = Field(default=None, description="Torch dtype name for in-process thinkers.")
    max_new_tokens: int = Field(default=1024, gt=0, description="Generation budget per critique.")
    temperature: float = Field(default=0.0, ge=0.0, description="Sampling temperature; 0 decodes greedily.")
    constrained: bool = Field(
        default=False, description="Constrain decoding to the protocol's grammar so output always parses."
    )
    max_image_side: int = Field(default=1024, gt=0, description="Downscale images to this side before sending.")
    timeout_s: float | None = Field(
        default=None, gt=0, description="Seconds one call may take before it fails (default per backend)."
    )
    max_attempts: int = Field(
        default=3, ge=1, le=10, description="Calls in all on 429/5xx, waiting as the server's Retry-After asks."
    )
