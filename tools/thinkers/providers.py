"""Chat-model providers a thinker can be named by (``provider:model``, as ``init_chat_model`` reads it).

Each provider we test names the LangChain package it needs, the extra of ours that installs it
and the environment variable its key comes from. Any other ``init_chat_model`` provider works
too when its package is installed; it gets no extra name and no default key variable.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from thinkedit.tools.errors import BadInputError, MissingExtraError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel


@dataclass(frozen=True)
class Provider:
    """Describe one chat-model provider: its LangChain package, our extra and its key variable."""

    name: str
    module: str
    package: str
    extra: str | None
    key_env: str | None
    #: Whether ``with_structured_output`` gives the expert protocol's JSON (else the tolerant parser).
    structured: bool = True


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in [
        Provider("openai", "langchain_openai", "langchain-openai", "server", "OPENAI_API_KEY"),
        Provider("anthropic", "langchain_anthropic", "langchain-anthropic", "anthropic", "ANTHROPIC_API_KEY"),
        Provider("google_genai", "langchain_google_genai", "langchain-google-genai", "google", "GOOGLE_API_KEY"),
        Provider("mistralai", "langchain_mistralai", "langchain-mistralai", None, "MISTRAL_API_KEY"),
    ]
}


def split_model(name: str) -> tuple[str, str]:
    """Split ``provider:model``; a name without a known provider prefix is an OpenAI-compatible model."""
    prefix, sep, rest = name.partition(":")
    if sep and rest and _is_provider(prefix):
        return prefix, rest
    return "openai", name  # vLLM, our thinker server, api.openai.com; "qwen3:8b" stays whole


def _is_provider(prefix: str) -> bool:
    """Say whether ``init_chat_model`` knows ``prefix`` as a provider."""
    if prefix in PROVIDERS:
        return True
    try:
        from langchain.chat_models.base import _BUILTIN_PROVIDERS  # noqa: PLC2701 - its registry of names
    except ImportError:
        return False
    return prefix in _BUILTIN_PROVIDERS


def provider(name: str) -> Provider:
    """Return our description of a provider (a bare one for providers we have not tested)."""
    known = PROVIDERS.get(name)
    if known is not None:
        return known
    package = f"langchain-{name.replace('_', '-')}"
    return Provider(name, package.replace("-", "_"), package, None, None, structured=False)


def key_env_for(model: str) -> str | None:
    """Return the key variable a ``provider:model`` name uses by default."""
    return provider(split_model(model)[0]).key_env


def default_key_env(model: str, base_url: str | None) -> str | None:
    """Return the key variable a thinker needs when its config names none.

    A bare (OpenAI-compatible) model at a URL is a local server (vLLM, ours), which needs no key;
    a named provider's API, wherever its URL points, needs that provider's key.
    """
    name, _ = split_model(model)
    if name == "openai" and base_url and not model.startswith("openai:"):
        return None
    return provider(name).key_env


def _require(p: Provider) -> None:
    """Import the provider's package, or say which extra (or package) installs it."""
    try:
        importlib.import_module("langchain.chat_models")
    except ModuleNotFoundError as exc:
        raise MissingExtraError(
            f"the {p.name} thinker needs init_chat_model from the server extra (missing module {exc.name!r}): "
            "pip install 'thinkedit[server]'"
        ) from exc
    try:
        importlib.import_module(p.module)
    except ModuleNotFoundError as exc:
        how = f"pip install 'thinkedit[{p.extra}]'" if p.extra else f"pip install {p.package}"
        extra = f"the {p.extra} extra" if p.extra else f"the {p.package} package"
        raise MissingExtraError(f"the {p.name} thinker needs {extra} (missing module {exc.name!r}): {how}") from exc


def require_packages(backend: str, model: str) -> None:
    """Fail now, naming the extra, when a chat-model thinker's provider package is not installed."""
    if backend == "chat-model":
        _require(provider(split_model(model)[0]))


def build_chat_model(
    model: str,
    *,
    base_url: str | None,
    api_key: str,
    temperature: float,
    max_tokens: int,
    timeout_s: float,
) -> BaseChatModel:
    """Build the chat model with ``init_chat_model``; its own retries are off (ours honour Retry-After)."""
    name, bare = split_model(model)
    p = provider(name)
    _require(p)
    from langchain.chat_models import init_chat_model

    kwargs: dict[str, Any] = {
        "temperature": temperature,
        "max_tokens": max_tokens,
        "timeout": timeout_s,
        "api_key": api_key,
        "max_retries": 0,
        # A critique is parsed whole. Without this, a graph streamed with "messages" (Studio, a chat UI, a parent
        # workflow) streams every model call inside it: a server that does not stream refuses, and
        # langchain-openai asks no usage of a base_url's stream, so the tokens would go uncounted.
        "disable_streaming": True,
    }
    if base_url:
        kwargs["base_url"] = base_url
    if name == "openai":
        import openai

        # One HTTP client per event loop: langchain-openai otherwise shares one that dies with its first loop.
        kwargs["http_async_client"] = openai.DefaultAsyncHttpxClient(timeout=timeout_s)
    elif name == "google_genai":
        kwargs["max_retries"] = 1  # google-genai counts attempts, the first included
    try:
        return init_chat_model(bare, model_provider=name, **kwargs)
    except ImportError as exc:  # a provider init_chat_model knows but whose package is missing
        raise MissingExtraError(f"the {name} thinker needs {p.package}: {exc}") from exc
    except ValueError as exc:
        raise BadInputError(f"cannot build the {name} chat model {bare!r}: {exc}") from exc
