"""Wire schemas of the local thinker server: the subset of OpenAI chat completions it really honours.

Fields outside this subset (``top_p``, ``tools``, ``logprobs`` ...) are refused by name rather
than silently ignored, so a client never believes a setting took effect when it did not.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    """Refuse unknown fields by name (the base of every request schema)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ImageURL(_Strict):
    """Where an image is: only ``data:`` URLs (the server never fetches anything)."""

    url: str = Field(description="A data URL: data:image/png;base64,....")
    detail: Literal["auto", "low", "high"] | None = Field(default=None, description="Accepted for compatibility.")


class TextPart(_Strict):
    """A piece of text in a message."""

    type: Literal["text"]
    text: str


class ImagePart(_Strict):
    """An image in a message."""

    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ChatMessage(_Strict):
    """One message of the conversation."""

    role: Literal["system", "user", "assistant"]
    content: str | list[ContentPart] = Field(description="Text, or a list of text and image parts.")
    name: str | None = None


class JsonSchemaSpec(_Strict):
    """A named JSON schema the answer must follow."""

    name: str = Field(max_length=64)
    schema_: dict[str, Any] = Field(alias="schema", description="The JSON schema.")
    strict: bool | None = None
    description: str | None = None


class ResponseFormat(_Strict):
    """OpenAI's ``response_format``: plain text, any JSON object, or JSON following a schema."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        """Require ``json_schema`` exactly when the type says so."""
        if (self.type == "json_schema") != (self.json_schema is not None):
            raise ValueError("give json_schema exactly when type is 'json_schema'")
        return self


class StructuredOutputs(_Strict):
    """vLLM's ``structured_outputs``: constrain the answer to an EBNF grammar or a JSON schema."""

    grammar: str | None = Field(default=None, description="EBNF grammar (xgrammar dialect) of the whole answer.")
    json_: dict[str, Any] | str | None = Field(default=None, alias="json", description="JSON schema of the answer.")

    @model_validator(mode="after")
    def _one_kind(self) -> StructuredOutputs:
        """Require exactly one constraint."""
        if (self.grammar is None) == (self.json_ is None):
            raise ValueError("give exactly one of 'grammar' or 'json'")
        return self


#: The largest seed torch takes (a signed 64-bit integer).
MAX_SEED = 2**63 - 1
#: Most images one request may carry: the source, the edit and up to eight references (the most a run sends).
MAX_IMAGES = 10


class ChatCompletionRequest(_Strict):
    """The body of ``POST /v1/chat/completions``."""

    model: str = Field(description="The served model's name.")
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=32768, description="Most tokens to generate.")
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32768, description="Same as max_tokens.")
    temperature: float | None = Field(default=None, ge=0.0, le=2.0, description="0 decodes greedily.")
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, description="Seed for sampled decoding.")
    n: int = Field(default=1, ge=1, le=1, description="Only one choice per request.")
    stream: bool = Field(default=False, description="Streaming is not supported; must be false.")
    response_format: ResponseFormat | None = None
    structured_outputs: StructuredOutputs | None = None
    user: str | None = Field(default=None, max_length=256)

    @field_validator("stream")
    @classmethod
    def _no_stream(cls, value: bool) -> bool:
        """Refuse streaming rather than answering in one piece."""
        if value:
            raise ValueError("streaming is not supported by this server")
        return value

    @model_validator(mode="after")
    def _one_constraint(self) -> ChatCompletionRequest:
        """Refuse two output constraints at once."""
        if self.structured_outputs is not None and self.response_format and self.response_format.type != "text":
            raise ValueError("give response_format or structured_outputs, not both")
        return self

    def token_budget(self) -> int | None:
        """Return the generation budget the client asked for."""
        return self.max_completion_tokens or self.max_tokens


class AssistantMessage(BaseModel):
    """The model's reply."""

    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    """One answer."""

    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]


class Usage(BaseModel):
    """Token counts."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """The body of a successful chat completion."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
