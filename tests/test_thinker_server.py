"""The local thinker server as a real process, driven by ChatModelThinker and the openai SDK."""

from __future__ import annotations

import base64
import json

import httpx
import openai
import pytest
from PIL import Image

from tests.servers import ServerProcess, png_bytes
from thinkedit.tools.config import ThinkerConfig
from thinkedit.tools.thinkers.chat_model import ChatModelThinker
from thinkedit.tools.types import JudgeRequest

pytestmark = pytest.mark.slow
MODEL = "tiny-qwen2.5-vl"


def data_url(image: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


def sdk(server: ServerProcess) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.url, api_key="unused", max_retries=0)


@pytest.mark.parametrize("protocol", ["editthinker", "expert"])
async def test_chat_model_thinker_gets_a_verdict_over_http(
    thinker: ServerProcess, photo: Image.Image, protocol: str
) -> None:
    config = ThinkerConfig(backend="chat-model", model=MODEL, base_url=thinker.url, protocol=protocol,
                           constrained=True, max_new_tokens=160, max_image_side=64)
    verdict = await ChatModelThinker(config).judge(
        JudgeRequest(source=photo, edited=photo, original_instruction="add a hat", current_instruction="add a hat")
    )
    assert 0 <= verdict.semantic <= 10 and 0 <= verdict.quality <= 10
    assert (verdict.satisfied is None) == (protocol == "editthinker")


async def test_response_format_json_schema_is_honoured(thinker: ServerProcess, photo: Image.Image) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    content = [{"type": "image_url", "image_url": {"url": data_url(photo.resize((32, 32)))}},
               {"type": "text", "text": "Is it fine?"}]
    reply = await sdk(thinker).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": content}],
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}},
        max_tokens=32,
    )
    assert isinstance(json.loads(reply.choices[0].message.content)["ok"], bool)
    assert reply.usage.completion_tokens > 0 and reply.model == MODEL


async def test_an_answer_that_ends_on_its_last_allowed_token_is_whole(thinker: ServerProcess,
                                                                       photo: Image.Image) -> None:
    """finish_reason "length" only when the answer was cut: the SDK's parse() refuses a "length" answer."""
    from pydantic import BaseModel

    class Answer(BaseModel):
        ok: bool

    content = [{"type": "image_url", "image_url": {"url": data_url(photo.resize((32, 32)))}},
               {"type": "text", "text": "Is it fine?"}]
    ask = {"model": MODEL, "messages": [{"role": "user", "content": content}], "response_format": Answer}
    free = await sdk(thinker).chat.completions.parse(**ask, max_tokens=64)
    assert free.choices[0].finish_reason == "stop"
    used = free.usage.completion_tokens
    exact = await sdk(thinker).chat.completions.parse(**ask, max_tokens=used)  # no room to spare, yet whole
    assert exact.choices[0].finish_reason == "stop" and exact.choices[0].message.parsed == free.choices[0].message.parsed
    with pytest.raises(openai.LengthFinishReasonError):  # one token fewer: cut, and said so
        await sdk(thinker).chat.completions.parse(**ask, max_tokens=used - 1)


async def test_images_and_models(thinker: ServerProcess, photo: Image.Image) -> None:
    small = photo.resize((48, 32))
    content = [{"type": "image_url", "image_url": {"url": data_url(small)}}, {"type": "text", "text": "describe"}]
    reply = await sdk(thinker).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": content}], max_tokens=4
    )
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert [m.id for m in (await sdk(thinker).models.list()).data] == [MODEL]


BAD_BODIES = [
    ({"top_p": 0.5}, 422, "top_p"),  # honoured by vLLM, not here: refused, not ignored
    ({"model": "gpt-4.1"}, 404, "gpt-4.1"),
    ({"stream": True}, 422, "stream"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/a.png"}}]}]},
     400, "data URL"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]},
     400, "not an image"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                   {"role": "user", "content": "c"}]}, 422, "multi-turn"),
    ({"messages": [{"role": "user", "content": "no picture"}]}, 422, "at least one image"),
    ({"structured_outputs": {"grammar": "root ::= oops"}}, 400, "constraint"),
    ({"seed": 2**64, "temperature": 0.7}, 422, "seed"),  # past what torch takes: named, not a 500
    ({"messages": [{"role": "user", "content": [  # past the image processor's 200:1: the request's fault, not a 500
        {"type": "image_url", "image_url": {"url": data_url(Image.new("RGB", (400, 1)))}}]}]},
     400, "cannot take this image"),
    ({"messages": [{"role": "user", "content": [  # eleven images, each as large as allowed: refused before decoding
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{'A' * 64}"}}] * 11}]},
     400, "11 images in one request; this server takes at most 10"),
]


@pytest.mark.parametrize(("change", "status", "says"), BAD_BODIES)
def test_bad_requests_are_refused_by_name(
    thinker: ServerProcess, photo: Image.Image, change: dict, status: int, says: str
) -> None:
    content = [{"type": "image_url", "image_url": {"url": data_url(photo.resize((32, 32)))}},
               {"type": "text", "text": "hi"}]
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 2, **change}
    response = httpx.post(f"{thinker.url}/chat/completions", json=body, timeout=30)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]["message"]
