"""Critique edits with any LangChain chat model that takes images, from any provider.

The thinker's model is named ``provider:model`` as ``init_chat_model`` reads it
(``anthropic:claude-…``, ``google_genai:gemini-…``); a bare name is an OpenAI-compatible model:
vLLM serving EditThinker-8B, our local thinker server, hosted GPT-4.1. The thinker sees the
source image, the edited image, then the prompt text, as the paper's model was trained; images
travel as LangChain's standard content blocks, so each provider package encodes them its own way.
Structured output: for OpenAI-compatible servers a JSON schema (``response_format``) for the
expert protocol, or the protocol's grammar as vLLM's ``structured_outputs`` for a ``constrained``
thinker; for other providers their own ``with_structured_output``; the tolerant parser otherwise.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from thinkedit.tools.config import ThinkerConfig, required_key
from thinkedit.tools.errors import BadInputError, ThinkerOutputError
from thinkedit.tools.per_loop import PerLoop
from thinkedit.tools.provider_errors import provider_error
from thinkedit.tools.retry import RetryPolicy, call_with_retries
from thinkedit.tools.store import FAST_PNG_LEVEL, to_png_bytes
from thinkedit.tools.thinkers.verdicts import (
    EXPERT_JSON_SCHEMA,
    editthinker_ebnf,
    expert_ebnf,
    free_text_budget,
    parse_verdict,
)
from thinkedit.tools.thinkers.prompt import interleave, load_template, render_prompt, with_references
from thinkedit.tools.thinkers.providers import build_chat_model, default_key_env, provider, split_model
from thinkedit.tools.types import JudgeRequest, Verdict

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage
    from PIL.Image import Image

log = logging.getLogger(__name__)

#: API key sent to servers that need none (vLLM without --api-key, our local thinker server).
PLACEHOLDER_API_KEY = "not-needed"
#: Seconds one critique may take before it counts as failed (and is retried as transient).
DEFAULT_TIMEOUT_S = 300.0
#: The expert answer as a named schema, for providers whose structured output wants a title.
EXPERT_OUTPUT_SCHEMA: dict[str, Any] = {
    "title": "edit_verdict",
    "description": "The verdict on an image edit: scores, reasoning and the next instruction.",
    **EXPERT_JSON_SCHEMA,
}


def image_block(image: Image, max_side: int) -> dict[str, Any]:
    """Return ``image`` as a standard base64 PNG content block, its longer side at most ``max_side``."""
    picture = image.convert("RGB")
    if max(picture.size) > max_side:
        picture = picture.copy()
        picture.thumbnail((max_side, max_side))
    data = base64.b64encode(to_png_bytes(picture, compress_level=FAST_PNG_LEVEL)).decode("ascii")
    return {"type": "image", "base64": data, "mime_type": "image/png"}


class ChatModelThinker:
    """Judge edits with a chat model, in the EditThinker tag protocol or the expert JSON protocol."""

    def __init__(self, config: ThinkerConfig, *, chat_model: BaseChatModel | None = None) -> None:
        """Check the config; ``chat_model`` replaces the one built from it (any LangChain chat model)."""
        self.config = config
        self.name = config.model
        self.provider, self.model = split_model(config.model)
        self._template = load_template(config.protocol, config.prompt_file)
        self._request_options = self._structured_output_options()
        self._injected = chat_model
        self._api_key = None if chat_model is not None else self._resolve_api_key()
        self._models: PerLoop[BaseChatModel] = PerLoop(self._new_chat_model)
        self.retry = RetryPolicy(attempts=config.max_attempts)

    def _resolve_api_key(self) -> str:
        """Return the key from ``api_key_env`` (else the provider's variable), or a placeholder for local servers."""
        key_env = self.config.api_key_env or default_key_env(self.config.model, self.config.base_url)
        if key_env:
            return required_key(key_env, f"the thinker {self.name}")
        if self.config.base_url:
            return os.environ.get("THINKEDIT_TOKEN") or PLACEHOLDER_API_KEY  # our servers' bearer token
        raise BadInputError(f"the chat-model thinker {self.name} needs base_url (a server URL) or api_key_env")

    def chat_model(self) -> BaseChatModel:
        """Return the injected model, or the running event loop's one (HTTP clients are per loop)."""
        return self._injected if self._injected is not None else self._models.get()

    def _new_chat_model(self) -> BaseChatModel:
        """Build the chat model the config names."""
        return build_chat_model(
            self.config.model,
            base_url=self.config.base_url,
            api_key=self._api_key or PLACEHOLDER_API_KEY,
            temperature=self.config.temperature,
            max_tokens=self.config.max_new_tokens,
            timeout_s=self.config.timeout_s or DEFAULT_TIMEOUT_S,
        )

    @property
    def uses_provider_structured_output(self) -> bool:
        """Say whether the expert JSON comes from the provider's ``with_structured_output``."""
        return (
            self.config.protocol == "expert"
            and self.provider != "openai"
            and provider(self.provider).structured
            and self._injected is None
        )

    def _structured_output_options(self) -> dict[str, Any]:
        """Return the per-request options that make an OpenAI-compatible model answer in the protocol's shape.

        ``constrained`` sends the protocol's length-capped grammar as vLLM's ``structured_outputs``
        (vLLM >= 0.12 and our local server honour it; the old ``guided_*`` fields are ignored), so
        even a weak model's answer parses and fits ``max_new_tokens``. Otherwise the expert protocol
        asks for its JSON schema through ``response_format``, which hosted OpenAI understands too.
        """
        if self.provider != "openai":
            return {}
        if self.config.constrained:
            ebnf = editthinker_ebnf if self.config.protocol == "editthinker" else expert_ebnf
            grammar = ebnf(*free_text_budget(self.config.protocol, self.config.max_new_tokens))
            return {"extra_body": {"structured_outputs": {"grammar": grammar}}}
        if self.config.protocol == "expert":
            schema = {"name": "edit_verdict", "schema": EXPERT_JSON_SCHEMA, "strict": True}
            return {"response_format": {"type": "json_schema", "json_schema": schema}}
        return {}

    def messages(self, request: JudgeRequest) -> list[BaseMessage]:
        """Build the one user turn: the images where the template's ``<image>`` markers are (else first), and the text."""
        from langchain_core.messages import HumanMessage

        prompt = render_prompt(
            self._template,
            original_instruction=request.original_instruction,
            current_instruction=request.current_instruction,
        )
        prompt = with_references(prompt, len(request.references))
        side = self.config.max_image_side
        images = [image_block(picture, side) for picture in (request.source, *request.references, request.edited)]
        content: list[str | dict[str, Any]] = [
            {"type": "text", "text": part} if isinstance(part, str) else part for part in interleave(prompt, images)
        ]
        return [HumanMessage(content=content)]

    async def _ask(self, request: JudgeRequest) -> tuple[str, Any]:
        """Send one critique request; return the answer's text and the raw message (for usage)."""
        messages = self.messages(request)
        options = dict(self._request_options)
        if request.seed is not None and self.config.temperature > 0 and self.provider == "openai":
            options["seed"] = request.seed
        try:
            if self.uses_provider_structured_output:
                runnable = self.chat_model().with_structured_output(EXPERT_OUTPUT_SCHEMA, include_raw=True)
                out = await runnable.ainvoke(messages)
                parsed, raw = out.get("parsed"), out.get("raw")
                text = json.dumps(parsed) if isinstance(parsed, dict) else (raw.text if raw is not None else "")
                return text, raw
            reply = await self.chat_model().ainvoke(messages, **options)
        except Exception as exc:
            if _is_length_cut(exc):
                usage = getattr(getattr(exc, "completion", None), "usage", None)
                billed = (usage.prompt_tokens or 0, usage.completion_tokens or 0) if usage is not None else None
                raise ThinkerOutputError(
                    "the thinker's structured answer was cut off at max_new_tokens", "", billed=billed
                ) from exc
            raise provider_error(
                exc, role="thinker", provider=self.provider, model=self.model, where=self.config.base_url
            ) from exc
        return reply.text, reply

    async def judge(self, request: JudgeRequest) -> Verdict:
        """Ask the model for a critique (retrying 429/5xx as the server asks) and parse it."""
        started = time.perf_counter()
        text, message = await call_with_retries(
            lambda: self._ask(request), self.retry, what=f"thinker {self.provider}:{self.model}"
        )
        latency = time.perf_counter() - started
        usage = getattr(message, "usage_metadata", None) or {}
        try:
            verdict = parse_verdict(self.config.protocol, text, latency_s=latency, thinker=self.name)
        except ThinkerOutputError as exc:
            exc.billed = (usage.get("input_tokens") or 0, usage.get("output_tokens") or 0) if usage else None
            raise
        return verdict.model_copy(
            update={"input_tokens": usage.get("input_tokens"), "output_tokens": usage.get("output_tokens")}
        )


def _is_length_cut(exc: Exception) -> bool:
    """Say whether the SDK stopped a structured answer at the token limit (openai's LengthFinishReasonError)."""
    return any(cls.__name__ == "LengthFinishReasonError" for cls in type(exc).__mro__)
