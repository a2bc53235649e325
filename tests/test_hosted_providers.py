"""Hosted editors and thinkers through their real client libraries, against a recording HTTP double.

Each test points the provider's own client (openai, langchain-openai, langchain-anthropic,
langchain-google-genai, replicate) at ``tests.provider_doubles`` on 127.0.0.1 and asserts what the
provider would have received: endpoint, auth header, model, image encoding and order, sizes, and
that no seed goes where none is accepted.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from tests.provider_doubles import USAGE_IN, USAGE_OUT, ProviderDouble, provider_double
from thinkedit.agent.settings import LoopSettings
from thinkedit.tools.config import EditorConfig, ThinkerConfig
from thinkedit.tools.editors.gpt_image import GptImageEditor
from thinkedit.tools.editors.replicate_kontext import ReplicateKontextEditor
from thinkedit.tools.errors import BackendError, BadInputError, MissingExtraError, TransientBackendError
from thinkedit.tools.registry import BackendCache
from thinkedit.tools.thinkers.chat_model import ChatModelThinker
from thinkedit.tools.thinkers.providers import require_packages
from thinkedit.tools.types import EditRequest, JudgeRequest


@pytest.fixture
def double() -> Iterator[ProviderDouble]:
    with provider_double() as d:
        yield d


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"OPENAI_API_KEY": "sk-test-openai", "ANTHROPIC_API_KEY": "sk-ant-test",
                        "GOOGLE_API_KEY": "g-test", "REPLICATE_API_TOKEN": "r8_test"}.items():
        monkeypatch.setenv(name, value)


def picture(size: tuple[int, int], color: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", size, color)


def decode_png(data: bytes | str) -> Image.Image:
    if isinstance(data, str):  # standard or URL-safe alphabet (google-genai), padding optional
        data = data.replace("-", "+").replace("_", "/")
        data = base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    raw = data
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(raw))


def judge_request() -> JudgeRequest:
    return JudgeRequest(source=picture((300, 200), (0, 200, 0)), edited=picture((300, 200), (200, 0, 0)),
                        original_instruction="put a red hat on the cat", current_instruction="add a hat", seed=3)


# ---- editors -------------------------------------------------------------------------------------

async def test_gpt_image_sends_the_image_sizes_and_options_and_no_seed(double: ProviderDouble, keys: None) -> None:
    config = EditorConfig(backend="openai-gpt-image", model="gpt-image-1", base_url=f"{double.url}/v1",
                          api_key_env="OPENAI_API_KEY", settings={"quality": "medium", "input_fidelity": "high"})
    editor = BackendCache().editor(config)
    assert isinstance(editor, GptImageEditor)
    result = await editor.edit(EditRequest(image=picture((600, 400), (0, 200, 0)), instruction="add a hat", seed=7))
    (call,) = double.calls("/v1/images/edits")
    assert call.method == "POST" and call.headers["authorization"] == "Bearer sk-test-openai"
    form = call.form()
    assert form["model"] == ["gpt-image-1"] and form["prompt"] == ["add a hat"] and form["n"] == ["1"]
    assert form["size"] == ["1536x1024"] and form["quality"] == ["medium"] and form["input_fidelity"] == ["high"]
    assert "seed" not in form and "response_format" not in form
    ((filename, data, content_type),) = form["image"]
    assert content_type == "image/png" and decode_png(data).size == (600, 400)
    assert result.image.size == (600, 400) and result.seeded is False
    assert result.usage == {"input_tokens": 400, "output_tokens": 1056}


async def test_gpt_image_picks_the_size_by_orientation_and_rejects_unknown_settings(
    double: ProviderDouble, keys: None
) -> None:
    editor = GptImageEditor(EditorConfig(backend="openai-gpt-image", model="gpt-image-1", base_url=f"{double.url}/v1"))
    await editor.edit(EditRequest(image=picture((300, 500), (0, 0, 0)), instruction="x", num_images=2))
    assert double.calls("/v1/images/edits")[0].form()["size"] == ["1024x1536"]
    with pytest.raises(BadInputError, match="seed"):
        GptImageEditor(EditorConfig(backend="openai-gpt-image", model="gpt-image-1", settings={"seed": 1}))


async def test_replicate_kontext_uploads_the_image_and_runs_the_prediction(double: ProviderDouble, keys: None) -> None:
    config = EditorConfig(backend="replicate", model="black-forest-labs/flux-kontext-pro", base_url=double.url,
                          settings={"safety_tolerance": 2})
    editor = BackendCache().editor(config)
    assert isinstance(editor, ReplicateKontextEditor)
    result = await editor.edit(EditRequest(image=picture((320, 240), (0, 200, 0)), instruction="add a hat", seed=5))
    (upload,) = double.calls("^/v1/files$")
    (prediction,) = double.calls("/predictions$")
    assert prediction.path == "/v1/models/black-forest-labs/flux-kontext-pro/predictions"
    for call in (upload, prediction):
        assert call.headers["authorization"] == "Bearer r8_test"
    assert prediction.headers.get("prefer", "").startswith("wait")
    ((_, data, content_type),) = upload.form()["content"]
    assert decode_png(data).size == (320, 240)
    inputs = prediction.json()["input"]
    assert inputs["input_image"] == f"{double.url}/files/f0"  # the uploaded file, by its URL
    assert (inputs["prompt"], inputs["seed"], inputs["aspect_ratio"], inputs["safety_tolerance"]) == (
        "add a hat", 5, "match_input_image", 2)
    assert double.calls("/output/result.png")  # the client downloaded the output
    assert result.image.size == (320, 240) and result.seeded is True


# ---- thinkers ------------------------------------------------------------------------------------

def _thinker(model: str, base_url: str, **extra: Any) -> ChatModelThinker:
    config = ThinkerConfig(backend="chat-model", model=model, protocol="expert", base_url=base_url, **extra)
    thinker = BackendCache().thinker(config)
    assert isinstance(thinker, ChatModelThinker)
    return thinker


async def test_openai_thinker_sends_source_then_edited_as_data_urls(double: ProviderDouble, keys: None) -> None:
    thinker = _thinker("openai:gpt-4.1", f"{double.url}/v1", api_key_env="OPENAI_API_KEY")
    verdict = await thinker.judge(judge_request())
    (call,) = double.calls("/v1/chat/completions")
    assert call.headers["authorization"] == "Bearer sk-test-openai"
    body = call.json()
    assert body["model"] == "gpt-4.1" and body["response_format"]["type"] == "json_schema"
    parts = body["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    colors = [decode_png(p["image_url"]["url"].removeprefix("data:image/png;base64,")).getpixel((0, 0)) for p in parts[:2]]
    assert colors == [(0, 200, 0), (200, 0, 0)]  # source first, then the edit
    assert (verdict.semantic, verdict.input_tokens, verdict.output_tokens) == (4, USAGE_IN, USAGE_OUT)


@pytest.mark.parametrize("model", ["openai:gpt-4.1", "anthropic:claude-sonnet-5", "google_genai:gemini-3.5-flash"])
async def test_a_thinker_inside_a_graph_streamed_with_messages_still_asks_for_one_whole_answer(
    double: ProviderDouble, keys: None, model: str
) -> None:
    """Studio and chat UIs stream a graph with "messages", which makes LangChain stream every model call inside it."""
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class State(TypedDict, total=False):
        out: str

    thinker = _thinker(model, f"{double.url}/v1" if model.startswith("openai") else double.url)

    async def critique(state: State) -> State:
        verdict = await thinker.judge(judge_request())
        return {"out": f"{verdict.semantic} {verdict.input_tokens} {verdict.output_tokens}"}

    graph = StateGraph(State).add_node("critique", critique).add_edge(START, "critique").add_edge("critique", END)
    updates = [chunk async for mode, chunk in graph.compile().astream({}, stream_mode=["updates", "messages"])
               if mode == "updates"]
    assert updates == [{"critique": {"out": f"4.0 {USAGE_IN} {USAGE_OUT}"}}]  # whole, and its tokens counted
    (call,) = double.requests
    assert "stream" not in call.path.lower() and not json.loads(call.body or b"{}").get("stream"), call.path


async def test_anthropic_thinker_sends_base64_image_blocks_and_uses_a_tool(double: ProviderDouble, keys: None) -> None:
    thinker = _thinker("anthropic:claude-sonnet-5", double.url)
    verdict = await thinker.judge(judge_request())
    (call,) = double.calls("/v1/messages")
    # The key, in the header this anthropic SDK uses (older ones: x-api-key; newer: a bearer token).
    assert "sk-ant-test" in (call.headers.get("x-api-key"), call.headers.get("authorization", "").removeprefix("Bearer "))
    assert "anthropic-version" in call.headers
    body = call.json()
    assert body["model"] == "claude-sonnet-5"
    blocks = body["messages"][0]["content"]
    assert [b["type"] for b in blocks] == ["image", "image", "text"]
    assert all(b["source"]["type"] == "base64" and b["source"]["media_type"] == "image/png" for b in blocks[:2])
    assert [decode_png(b["source"]["data"]).getpixel((0, 0)) for b in blocks[:2]] == [(0, 200, 0), (200, 0, 0)]
    assert body["tools"][0]["name"] == "edit_verdict" and body["tool_choice"]["name"] == "edit_verdict"
    assert "put a red hat on the cat" in blocks[2]["text"]
    assert (verdict.semantic, verdict.satisfied, verdict.refined_instruction) == (
        4, False, "put a red party hat on the cat's head")
    assert (verdict.input_tokens, verdict.output_tokens) == (USAGE_IN, USAGE_OUT)


async def test_gemini_thinker_sends_inline_data_and_asks_for_json(double: ProviderDouble, keys: None) -> None:
    thinker = _thinker("google_genai:gemini-3.5-flash", double.url)
    verdict = await thinker.judge(judge_request())
    (call,) = double.calls(":generateContent")
    assert call.path.split("/models/")[1].startswith("gemini-3.5-flash:generateContent")
    assert call.headers["x-goog-api-key"] == "g-test"
    body = call.json()
    parts = body["contents"][0]["parts"]
    inline = [p.get("inlineData") or p.get("inline_data") for p in parts[:2]]
    assert all(i and (i.get("mimeType") or i.get("mime_type")) == "image/png" for i in inline)
    assert [decode_png(i["data"]).getpixel((0, 0)) for i in inline] == [(0, 200, 0), (200, 0, 0)]
    assert "put a red hat on the cat" in parts[2]["text"]
    config = body.get("generationConfig") or body.get("generation_config")
    assert (config.get("responseMimeType") or config.get("response_mime_type")) == "application/json"
    assert (verdict.semantic, verdict.input_tokens, verdict.output_tokens) == (4, USAGE_IN, USAGE_OUT)


# ---- rate limits, errors, keys, extras --------------------------------------------------------------

@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the waits this test's thread asks for (the SDKs' anyio.sleep, our retry loop's asyncio.sleep)."""
    import anyio

    here, asked = threading.get_ident(), []

    def recording(real: Any) -> Any:
        async def sleep(delay: float, *args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == here and delay:
                asked.append(delay)
            return await real(delay, *args, **kwargs)
        return sleep

    monkeypatch.setattr(anyio, "sleep", recording(anyio.sleep))
    monkeypatch.setattr(asyncio, "sleep", recording(asyncio.sleep))
    return asked


async def test_a_429_with_retry_after_is_waited_out_then_succeeds(
    double: ProviderDouble, keys: None, waits: list[float]
) -> None:
    double.fail_next("/v1/images/edits", 429, {"retry-after": "1"})
    editor = GptImageEditor(EditorConfig(backend="openai-gpt-image", model="gpt-image-1", base_url=f"{double.url}/v1"))
    result = await editor.edit(EditRequest(image=picture((64, 64), (1, 2, 3)), instruction="x"))
    assert len(double.calls("/v1/images/edits")) == 2 and result.image.size == (64, 64)
    assert 1 in waits, waits  # the retry waited the second the server asked for, not a backoff of its own

    waits.clear()
    double.fail_next("/v1/messages", 503, {"retry-after": "1"})
    await _thinker("anthropic:claude-sonnet-5", double.url).judge(judge_request())
    assert len(double.calls("/v1/messages")) == 2 and 1 in waits, waits

    waits.clear()
    double.fail_next("/predictions$", 429, {"retry-after": "1"})
    kontext = ReplicateKontextEditor(EditorConfig(backend="replicate", model="black-forest-labs/flux-kontext-pro",
                                                  base_url=double.url))
    await kontext.edit(EditRequest(image=picture((64, 64), (1, 2, 3)), instruction="x"))
    assert len(double.calls("/predictions$")) == 2 and 1 in waits, waits


async def test_retries_are_bounded_and_errors_name_provider_and_model(double: ProviderDouble, keys: None) -> None:
    double.fail_next("/v1/chat/completions", 429, {"retry-after": "3600"})
    with pytest.raises(TransientBackendError, match=r"openai:gpt-4\.1.*429.*3600 s"):
        await _thinker("openai:gpt-4.1", f"{double.url}/v1").judge(judge_request())
    assert len(double.calls("/v1/chat/completions")) == 1  # an hour's wait is not waited
    for _ in range(2):
        double.fail_next("/v1/images/edits", 500, {"retry-after": "0"})
    editor = GptImageEditor(EditorConfig(backend="openai-gpt-image", model="gpt-image-1", base_url=f"{double.url}/v1",
                                         max_attempts=2))
    with pytest.raises(TransientBackendError, match=r"editor openai:gpt-image-1 at .* answered 500"):
        await editor.edit(EditRequest(image=picture((32, 32), (0, 0, 0)), instruction="x"))
    assert len(double.calls("/v1/images/edits")) == 2
    double.fail_next("/v1/messages", 401)
    with pytest.raises(BackendError, match="anthropic:claude-sonnet-5.*401") as caught:
        await _thinker("anthropic:claude-sonnet-5", double.url).judge(judge_request())
    assert not isinstance(caught.value, TransientBackendError)


def test_a_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "REPLICATE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(BadInputError, match=r"\$ANTHROPIC_API_KEY"):
        ChatModelThinker(ThinkerConfig(backend="chat-model", model="anthropic:claude-sonnet-5", protocol="expert"))
    with pytest.raises(BadInputError, match=r"\$OPENAI_API_KEY"):
        GptImageEditor(EditorConfig(backend="openai-gpt-image", model="gpt-image-1"))
    with pytest.raises(BadInputError, match=r"\$REPLICATE_API_TOKEN"):
        ReplicateKontextEditor(EditorConfig(backend="replicate", model="black-forest-labs/flux-kontext-pro"))


async def test_a_missing_provider_package_names_the_extra(monkeypatch: pytest.MonkeyPatch, keys: None) -> None:
    monkeypatch.setitem(sys.modules, "langchain_anthropic", None)  # as if not installed
    thinker = ChatModelThinker(ThinkerConfig(backend="chat-model", model="anthropic:claude-sonnet-5",
                                             protocol="expert"))
    wanted = r"the anthropic thinker needs the anthropic extra.*pip install 'thinkedit\[anthropic\]'"
    with pytest.raises(MissingExtraError, match=wanted):
        thinker.chat_model()
    with pytest.raises(MissingExtraError, match=wanted):  # what the CLI and MCP check before any work
        require_packages("chat-model", "anthropic:claude-sonnet-5")
    require_packages("chat-model", "openai:gpt-4.1")
    monkeypatch.setitem(sys.modules, "langchain_google_genai", None)
    with pytest.raises(MissingExtraError, match=r"thinkedit\[google\]"):
        ChatModelThinker(ThinkerConfig(backend="chat-model", model="google_genai:gemini-3.5-flash",
                                       protocol="expert")).chat_model()


def test_thinker_model_with_a_provider_switches_to_its_api_and_key() -> None:
    settings = LoopSettings.from_profile("openai")
    claude = settings.with_servers(thinker_model="anthropic:claude-sonnet-5").thinker
    assert (claude.backend, claude.api_key_env, claude.base_url, claude.protocol) == (
        "chat-model", "ANTHROPIC_API_KEY", None, "expert")
    local = LoopSettings.from_profile("tiny").with_servers(thinker_model="google_genai:gemini-3.5-flash").thinker
    assert (local.backend, local.api_key_env, local.path, local.constrained) == (
        "chat-model", "GOOGLE_API_KEY", None, False)
    same = settings.with_servers(thinker_url="http://127.0.0.1:9/v1").thinker
    assert (same.model, same.base_url) == ("openai:gpt-4.1", "http://127.0.0.1:9/v1")
    editor = settings.with_servers(editor_url="http://127.0.0.1:9/v1").editor
    assert (editor.backend, editor.base_url) == ("openai-gpt-image", "http://127.0.0.1:9/v1")


async def test_replicate_retries_a_status_check_or_a_download_never_the_billed_prediction(
    double: ProviderDouble, keys: None, waits: list[float]
) -> None:
    kontext = ReplicateKontextEditor(EditorConfig(backend="replicate", model="black-forest-labs/flux-kontext-pro",
                                                  base_url=double.url))
    double.processing_polls = 2  # the prediction outlasts the create request: the client polls it
    double.fail_next(r"/v1/predictions/p\d+$", 502)  # one status check fails ...
    double.fail_next("/output/result.png", 503, {"retry-after": "0"})  # ... and so does the first download
    result = await kontext.edit(EditRequest(image=picture((64, 48), (1, 2, 3)), instruction="x", seed=1))
    assert result.image.size == (64, 48)
    assert len(double.billed("/predictions$")) == 1  # one prediction created and billed, whatever failed after
    assert len(double.calls("/output/result.png")) == 2 and not double.calls("/cancel$")


async def test_replicate_cancels_a_prediction_it_gives_up_on(double: ProviderDouble, keys: None) -> None:
    kontext = ReplicateKontextEditor(EditorConfig(backend="replicate", model="black-forest-labs/flux-kontext-pro",
                                                  base_url=double.url, max_attempts=2))
    double.processing_polls = 5
    for _ in range(2):
        double.fail_next(r"/v1/predictions/p\d+$", 500, {"retry-after": "0"})
    with pytest.raises(TransientBackendError, match="replicate"):
        await kontext.edit(EditRequest(image=picture((32, 32), (0, 0, 0)), instruction="x"))
    assert len(double.billed("/predictions$")) == 1 and len(double.calls("/cancel$")) == 1  # stopped, not left running


async def test_replicate_stops_the_other_predictions_when_one_fails(double: ProviderDouble, keys: None) -> None:
    """Best-of-K on Replicate: a refused prediction ends the edit, and the ones still running are cancelled, not billed
    to the end and thrown away."""
    kontext = ReplicateKontextEditor(EditorConfig(backend="replicate", model="black-forest-labs/flux-kontext-pro",
                                                  base_url=double.url))
    double.processing_polls = 1000  # both predictions would run for a long while ...
    double.fail_next(r"/v1/predictions/p\d+$", 401)  # ... but one's status check fails for good
    with pytest.raises(BackendError, match="401"):
        await kontext.edit(EditRequest(image=picture((32, 32), (0, 0, 0)), instruction="x", num_images=2))
    assert len(double.billed("/predictions$")) == 2 and len(double.calls("/cancel$")) == 2  # both stopped


async def test_an_edit_whose_answer_timed_out_is_not_sent_again(double: ProviderDouble, keys: None) -> None:
    """The provider had the request and may have made (and billed) the edit: a retry would pay for it twice."""
    config = EditorConfig(backend="openai-gpt-image", model="gpt-image-1", base_url=f"{double.url}/v1",
                          api_key_env="OPENAI_API_KEY", timeout_s=0.5, max_attempts=3)
    double.delay_s = 2.0
    with pytest.raises(BackendError, match="did not answer in time .*not sent again") as failed:
        await GptImageEditor(config).edit(EditRequest(image=picture((64, 48), (1, 2, 3)), instruction="x"))
    assert not isinstance(failed.value, TransientBackendError)
    assert len(double.calls("/v1/images/edits")) == 1


async def test_hosted_editors_send_reference_images_or_refuse_them(double: ProviderDouble, keys: None) -> None:
    request = EditRequest(image=picture((64, 48), (1, 2, 3)), instruction="put the hat from image 2 on the cat",
                          references=[picture((40, 40), (200, 0, 0))])
    editor = GptImageEditor(EditorConfig(backend="openai-gpt-image", model="gpt-image-1", base_url=f"{double.url}/v1"))
    await editor.edit(request)
    (call,) = double.calls("/v1/images/edits")
    sent = call.form()["image[]"]  # the source, then the reference: both reach the API
    assert [name for name, _, _ in sent] == ["image.png", "reference-2.png"]
    assert [decode_png(data).size for _, data, _ in sent] == [(64, 48), (40, 40)]
    kontext = ReplicateKontextEditor(EditorConfig(backend="replicate", model="black-forest-labs/flux-kontext-pro",
                                                  base_url=double.url))
    with pytest.raises(BadInputError, match="takes 1 input image per edit; got the source and 1 reference"):
        await kontext.edit(request)
    assert not double.calls("/predictions$")  # refused before anything is sent (or billed)


async def test_a_password_in_a_base_url_never_shows_in_errors(double: ProviderDouble, keys: None) -> None:
    proxy = double.url.replace("http://", "http://proxyuser:Pr0xyS3cret-91@") + "/v1"  # a proxy's credentials
    editor = GptImageEditor(EditorConfig(backend="openai-gpt-image", model="gpt-image-1", base_url=proxy))
    double.fail_next("/v1/images/edits", 400)
    with pytest.raises(BadInputError) as caught:  # a 400: the request's fault, named
        await editor.edit(EditRequest(image=picture((32, 32), (0, 0, 0)), instruction="x"))
    said = str(caught.value)
    assert "answered 400" in said and "proxyuser:***@" in said, said
    assert "Pr0xyS3cret-91" not in said
    assert len(double.calls("/v1/images/edits")) == 1  # the URL itself still reached the server
