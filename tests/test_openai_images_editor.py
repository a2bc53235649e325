"""OpenAIImagesEditor against the real editor server, and its error mapping against scripted responses."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.provider_doubles import provider_double
from tests.servers import ServerProcess, free_port
from thinkedit.tools.config import EditorConfig
from thinkedit.tools.editors.openai_images import OpenAIImagesEditor
from thinkedit.tools.errors import BackendError, BadInputError, TransientBackendError
from thinkedit.tools.registry import BackendCache
from thinkedit.tools.types import EditRequest


def remote(server: ServerProcess | str, **kwargs: Any) -> OpenAIImagesEditor:
    url = server if isinstance(server, str) else server.url
    return OpenAIImagesEditor(EditorConfig(backend="openai-images", model="tiny-kontext", base_url=url, **kwargs))


@pytest.fixture
def image(photo: Image.Image) -> Image.Image:
    return photo.resize((75, 45))


@pytest.mark.slow
async def test_edits_come_back_at_the_input_size_and_repeat_with_the_seed(
    editor: ServerProcess, image: Image.Image
) -> None:
    client = remote(editor, settings={"num_inference_steps": 3})
    first = await client.edit(EditRequest(image=image, instruction="add a hat", seed=11))
    again = await client.edit(EditRequest(image=image, instruction="add a hat", seed=11))
    other = await client.edit(EditRequest(image=image, instruction="add a hat", seed=12, num_images=2))
    assert first.image.size == image.size and len(other.images) == 2
    assert first.settings == {"seed": 11, "num_inference_steps": 3}
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    assert np.abs(np.asarray(first.image, dtype=int) - np.asarray(other.image, dtype=int)).mean() > 1


@pytest.mark.slow
async def test_the_registry_builds_it_from_the_backend_name(editor: ServerProcess, image: Image.Image) -> None:
    config = EditorConfig(backend="openai-images", model="tiny-kontext", base_url=editor.url, max_side=32)
    client = BackendCache().editor(config)
    assert isinstance(client, OpenAIImagesEditor)
    assert (await client.edit(EditRequest(image=image, instruction="x"))).image.size == image.size


@pytest.mark.slow
async def test_a_bad_setting_is_the_callers_fault_with_the_servers_message(
    editor: ServerProcess, image: Image.Image
) -> None:
    with pytest.raises(BadInputError, match="unknown setting 'image_guidance_scale'"):
        await remote(editor, settings={"image_guidance_scale": 1.5}).edit(EditRequest(image=image, instruction="x"))
    with pytest.raises(BackendError, match="not served here") as caught:
        await OpenAIImagesEditor(
            EditorConfig(backend="openai-images", model="flux-kontext-dev", base_url=editor.url)
        ).edit(EditRequest(image=image, instruction="x"))
    assert not isinstance(caught.value, TransientBackendError)


async def test_nothing_listening_is_transient(image: Image.Image) -> None:
    client = OpenAIImagesEditor(
        EditorConfig(backend="openai-images", model="m", base_url=f"http://127.0.0.1:{free_port()}/v1", max_attempts=1)
    )
    with pytest.raises(TransientBackendError, match="cannot reach"):
        await client.edit(EditRequest(image=image, instruction="x"))


def scripted(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.MockTransport:
    """A transport answering every request with one response (test double for a misbehaving server)."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return httpx.MockTransport(answer)


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, TransientBackendError), (500, TransientBackendError), (503, TransientBackendError),
     (400, BadInputError), (413, BadInputError), (422, BadInputError), (401, BackendError), (404, BackendError)],
)
async def test_http_errors_are_sorted_into_retryable_or_not(
    monkeypatch: pytest.MonkeyPatch, image: Image.Image, status: int, error: type[Exception]
) -> None:
    import openai

    client = OpenAIImagesEditor(EditorConfig(backend="openai-images", model="m", base_url="http://127.0.0.1:9/v1",
                                             max_attempts=1))
    transport = scripted(status, {"error": {"message": f"server says {status}", "type": "x"}})
    monkeypatch.setattr(client, "_client", lambda: openai.AsyncOpenAI(
        base_url="http://127.0.0.1:9/v1", api_key="k", max_retries=0, http_client=httpx.AsyncClient(transport=transport)
    ))
    with pytest.raises(error, match=f"server says {status}") as caught:
        await client.edit(EditRequest(image=image, instruction="x"))
    assert isinstance(caught.value, TransientBackendError) == (error is TransientBackendError)


def test_openais_own_api_is_sent_to_the_gpt_image_backend(image: Image.Image) -> None:
    for base_url in (None, "https://api.openai.com/v1"):
        with pytest.raises(BadInputError, match="openai-gpt-image"):
            OpenAIImagesEditor(EditorConfig(backend="openai-images", model="gpt-image-1", base_url=base_url,
                                            api_key_env="OPENAI_API_KEY"))
    local = remote("http://127.0.0.1:9/v1", settings={"guidance_scale": 3.0})
    fields = local.form_fields(EditRequest(image=image, instruction="x", seed=3, settings={"guidance_scale": 4.0}))
    assert fields == {"seed": 3, "guidance_scale": 4.0}


async def test_one_client_per_event_loop(image: Image.Image) -> None:
    client = remote("http://127.0.0.1:9/v1")
    first = client._client()
    assert client._client() is first
    other = await asyncio.to_thread(lambda: asyncio.run(_client_in_new_loop(client)))
    assert other is not first


async def _client_in_new_loop(client: OpenAIImagesEditor) -> Any:
    return client._client()


async def test_the_configs_attempts_and_timeout_are_honoured(image: Image.Image) -> None:
    """``max_attempts`` calls in all, each within ``timeout_s``: the SDK's own retries would send more, and bill more."""

    def editor(**options: Any) -> OpenAIImagesEditor:
        return OpenAIImagesEditor(EditorConfig(backend="openai-images", model="m", base_url=f"{double.url}/v1",
                                               **options))

    with provider_double() as double:
        for _ in range(3):
            double.fail_next(r"/images/edits", 503, {"retry-after": "0"})
        with pytest.raises(TransientBackendError, match="503"):
            await editor(max_attempts=1).edit(EditRequest(image=image, instruction="x"))
        assert len(double.calls(r"/images/edits")) == 1
        edited = await editor(max_attempts=3).edit(EditRequest(image=image, instruction="x"))  # 503, 503, then 200
        assert len(double.calls(r"/images/edits")) == 4 and edited.image.size == image.size
        double.delay_s = 3.0
        with pytest.raises(BackendError, match="did not answer in time"):  # timed out, where 600 s would wait ...
            await editor(timeout_s=0.5, max_attempts=3).edit(EditRequest(image=image, instruction="x"))
        assert len(double.calls(r"/images/edits")) == 5  # ... and not sent again: the server may still make it
