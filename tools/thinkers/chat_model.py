"""Critique edits with any LangChain chat model that takes images, over HTTP.

``ChatOpenAI`` talks to every OpenAI-compatible server: vLLM serving EditThinker-8B, our local
thinker server, hosted GPT-4.1 and the like. The thinker sees the source image, the edited
image, then the prompt text, as the paper's model was trained. Structured output is asked for
per request: a JSON schema (``response_format``) for the expert protocol, or, for a
``constrained`` thinker, the protocol's grammar as vLLM's ``structured_outputs``.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from thinkedit.tools.config import ThinkerConfig
from thinkedit.tools.extras import missing_extra
from thinkedit.tools.errors import BackendError, BadInputError, ThinkerOutputError, TransientBackendError
from thinkedit.tools.images import to_png_bytes
from thinkedit.tools.thinkers.parsing import EXPERT_JSON_SCHEMA, parse_verdict
from thinkedit.tools.thinkers.prompt import interleave, load_template, render_prompt, with_references
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


def image_data_url(image: Image, max_side: int) -> str:
    """Return ``image`` as a base64 PNG data URL, downscaled so its longer side is at most ``max_side``."""
    picture = image.convert("RGB")
    if max(picture.size) > max_side:
        picture = picture.copy()
        picture.thumbnail((max_side, max_side))
    return "data:image/png;base64," + base64.b64encode(to_png_bytes(picture)).decode("ascii")


class ChatModelThinker:
    """Judge edits with a chat model, in the EditThinker tag protocol or the expert JSON protocol."""

    def __init__(self, config: ThinkerConfig, *, chat_model: BaseChatModel | None = None) -> None:
        """Check the config; ``chat_model`` replaces the ChatOpenAI built from it (any LangChain chat model)."""
        self.config = config
        self.name = config.model
        self._template = load_template(config.protocol, config.prompt_file)
        self._request_options = self._structured_output_options()
        self._injected = chat_model
        self._api_key = None if chat_model is not None else self._resolve_api_key()
        self._models: dict[int, BaseChatModel] = {}

    def _resolve_api_key(self) -> str:
        """Return the key from ``api_key_env``, else our token or a placeholder for keyless local servers."""
        if self.config.api_key_env:
            api_key = os.environ.get(self.config.api_key_env)
            if not api_key:
                raise BadInputError(f"the thinker needs an API key in ${self.config.api_key_env}, which is not set")
            return api_key
        if self.config.base_url:
            return os.environ.get("THINKEDIT_TOKEN") or PLACEHOLDER_API_KEY  # our servers' bearer token
        raise BadInputError("the chat-model thinker needs base_url (a server URL) or api_key_env")

    def chat_model(self) -> BaseChatModel:
        """Return the injected model, or a ChatOpenAI for the running event loop.

        One per loop, with its own HTTP client: langchain-openai otherwise shares a process-wide
        async client, which dies with the first event loop that used it.
        """
        if self._injected is not None:
            return self._injected
        import asyncio

        loop_id = id(asyncio.get_running_loop())
        if loop_id not in self._models:
            self._models = {loop_id: self._build_chat_model()}  # an old loop's client is unusable anyway
        return self._models[loop_id]

    def _build_chat_model(self) -> BaseChatModel:
        """Build ChatOpenAI for ``base_url`` (or api.openai.com) with the key from ``api_key_env``."""
        try:
            import openai
            from langchain_openai import ChatOpenAI
        except ModuleNotFoundError as exc:
            raise (missing_extra(exc, "the chat-model thinker") or exc) from exc
        return ChatOpenAI(
            model=self.config.model,
            base_url=self.config.base_url,
            api_key=self._api_key,
            temperature=self.config.temperature,
            max_tokens=self.config.max_new_tokens,
            timeout=DEFAULT_TIMEOUT_S,
            max_retries=2,
            http_async_client=openai.DefaultAsyncHttpxClient(timeout=DEFAULT_TIMEOUT_S),
        )

    def _structured_output_options(self) -> dict[str, Any]:
        """Return the per-request options that make the model answer in the protocol's shape.

        ``constrained`` sends the protocol's length-capped grammar as vLLM's ``structured_outputs``
        (vLLM >= 0.12 and our local server honour it; the old ``guided_*`` fields are ignored), so
        even a weak model's answer parses and fits ``max_new_tokens``. Otherwise the expert protocol
        asks for its JSON schema through ``response_format``, which hosted APIs understand too.
        """
        if self.config.constrained:
            from thinkedit.tools.thinkers.grammar import editthinker_ebnf, expert_ebnf, free_text_budget

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
        images = [
            {"type": "image_url", "image_url": {"url": image_data_url(picture, side)}}
            for picture in (request.source, *request.references, request.edited)
        ]
        content: list[str | dict[str, Any]] = [
            {"type": "text", "text": part} if isinstance(part, str) else part for part in interleave(prompt, images)
        ]
        return [HumanMessage(content=content)]

    async def judge(self, request: JudgeRequest) -> Verdict:
        """Ask the model for a critique and parse it; transport faults become ``TransientBackendError``."""
        options = dict(self._request_options)
        if request.seed is not None and self.config.temperature > 0:
            options["seed"] = request.seed
        started = time.perf_counter()
        try:
            reply = await self.chat_model().ainvoke(self.messages(request), **options)
        except Exception as exc:
            raise _map_error(exc, self.config.base_url) from exc
        latency = time.perf_counter() - started
        return parse_verdict(self.config.protocol, reply.text, latency_s=latency, thinker=self.name)


def _map_error(exc: Exception, base_url: str | None) -> Exception:
    """Sort a chat-model failure: connection, timeout, 408/409/429/5xx are transient, the rest are not."""
    where = base_url or "api.openai.com"
    try:
        import openai
    except ImportError:  # another provider's model: keep its error, unclassified
        return exc
    if isinstance(exc, openai.APIConnectionError | openai.APITimeoutError):
        return TransientBackendError(f"cannot reach the thinker at {where}: {exc}")
    if isinstance(exc, openai.LengthFinishReasonError):
        return ThinkerOutputError("the thinker's structured answer was cut off at max_new_tokens", "")
    if isinstance(exc, openai.APIStatusError):
        status = int(exc.status_code)
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = body.get("message") or exc.message
        message = f"thinker at {where} answered {status}: {detail}"
        if status in (408, 409, 429) or status >= 500:
            return TransientBackendError(message)
        return BackendError(message)
    if isinstance(exc, ConnectionError | TimeoutError):
        return TransientBackendError(f"cannot reach the thinker at {where}: {exc}")
    return exc
