"""The editor server as a real process on loopback, driven by the openai SDK (and httpx for raw bodies)."""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import zlib
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from tests.servers import ServerProcess, editor_server, metric, png_bytes

pytestmark = pytest.mark.slow

TOKEN = "s3cret-token"


def client(server: ServerProcess, api_key: str = "unused", retries: int = 0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.url, api_key=server.token or api_key, max_retries=retries)


def decode(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def assert_same_image(a: Image.Image, b: Image.Image) -> None:
    """Equal up to float rounding (batched kernels add in another order)."""
    diff = np.abs(pixels(a) - pixels(b))
    assert diff.max() <= 3 and (diff > 0).mean() < 2e-3, f"max {diff.max()}, {(diff > 0).mean():.3%} differ"


def lying_png(width: int, height: int) -> bytes:
    """Return a tiny PNG whose header claims ``width`` x ``height`` (how decompression bombs look)."""
    data = bytearray(png_bytes(Image.new("RGB", (8, 8))))
    ihdr = bytearray(data[12:29])  # chunk type + 13 bytes of IHDR data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


@pytest.fixture(scope="module")
def small(server_data_dir: Path, server_logs: Path):  # type: ignore[no-untyped-def]
    """A server with a 1 MiB body limit and a token."""
    server = editor_server(server_data_dir, server_logs, "--max-upload-mb", "1", token=TOKEN)
    with server:
        yield server


@pytest.fixture
def image() -> Image.Image:
    """A small photo whose sides are not multiples of 16 (the server must give the same size back)."""
    return Image.open(Path(__file__).parent.parent / "examples" / "chelsea.png").convert("RGB").resize((70, 50))


async def edit(server: ServerProcess, image: Image.Image, seed: int = 0, **fields: object):  # type: ignore[no-untyped-def]
    extra = {"seed": seed, **fields}
    return await client(server).images.edit(
        image=("in.png", png_bytes(image), "image/png"), prompt="add a red hat", model="tiny-kontext", extra_body=extra
    )


async def test_health_models_and_metrics(editor: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=editor.base) as http:
        health = (await http.get("/health")).json()
        assert health["status"] == "ready" and health["model"] == "tiny-kontext"
        models = (await http.get("/v1/models")).json()["data"]
        assert [m["id"] for m in models] == ["tiny-kontext"]
        assert "num_inference_steps" in models[0]["settings"]
        text = (await http.get("/metrics")).text
        assert "thinkedit_editor_queue_depth" in text and 'replica="' in text


async def test_edit_returns_images_at_the_input_size_with_their_seeds(editor: ServerProcess, image: Image.Image) -> None:
    result = await edit(editor, image, seed=5, n=2, num_inference_steps=2)
    assert len(result.data) == 2
    first, second = (decode(d.b64_json) for d in result.data)
    assert first.size == second.size == image.size
    assert [d.model_extra["seed"] for d in result.data] == [5, 6]
    assert np.abs(pixels(first) - pixels(second)).mean() > 1  # two seeds, two pictures
    resized = await edit(editor, image, size="32x48", output_format="jpeg")
    assert decode(resized.data[0].b64_json).size == (32, 48)
    assert resized.output_format == "jpeg"


async def test_parallel_requests_are_batched_and_match_sequential_ones(editor: ServerProcess, image: Image.Image) -> None:
    sequential = [decode((await edit(editor, image, seed=s)).data[0].b64_json) for s in range(8)]
    before = httpx.get(f"{editor.base}/metrics").text
    parallel = await asyncio.gather(*(edit(editor, image, seed=s) for s in range(8)))
    after = httpx.get(f"{editor.base}/metrics").text
    for alone, together in zip(sequential, parallel, strict=True):
        assert_same_image(alone, decode(together.data[0].b64_json))
    batches = metric(after, "thinkedit_editor_batch_size_count") - metric(before, "thinkedit_editor_batch_size_count")
    assert batches < 8, "8 concurrent compatible requests should share pipeline calls"


BAD_FIELDS = [
    ({"guidance_scal": 2.0}, 422, "guidance_scal"),  # misspelt
    ({"image_guidance_scale": 1.5}, 422, "image_guidance_scale"),  # not a Kontext setting
    ({"num_inference_steps": 0}, 422, "num_inference_steps"),
    ({"response_format": "url"}, 422, "response_format"),
    ({"size": "12x12000"}, 422, "size"),
    ({"n": 20}, 422, "n"),
    ({"stream": "true"}, 422, "stream"),
]


@pytest.mark.parametrize(("fields", "status", "named"), BAD_FIELDS)
async def test_bad_fields_are_422_naming_the_field(
    editor: ServerProcess, image: Image.Image, fields: dict[str, object], status: int, named: str
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        await edit(editor, image, **fields)
    assert caught.value.status_code == status
    assert named in caught.value.body["message"]


async def test_wrong_model_is_404(editor: ServerProcess, image: Image.Image) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client(editor).images.edit(image=("a.png", png_bytes(image), "image/png"), prompt="x", model="dall-e-2")
    assert "tiny-kontext" in caught.value.body["message"]


BAD_IMAGES = [
    (b"this is not an image at all", 400, "not an image"),
    (png_bytes(Image.new("RGB", (64, 64), "red"))[:60], 400, "truncated"),
    (lying_png(5000, 4000), 413, "too large"),  # over --max-pixels
    (lying_png(30000, 30000), 413, "decompression bomb"),
    (b"", 400, "empty"),
]


@pytest.mark.parametrize(("data", "status", "says"), BAD_IMAGES)
async def test_bad_images_get_a_clear_4xx_and_the_server_lives(
    editor: ServerProcess, image: Image.Image, data: bytes, status: int, says: str
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        await client(editor).images.edit(image=("x.png", data, "image/png"), prompt="edit", extra_body={"seed": 1})
    assert caught.value.status_code == status
    assert says in caught.value.body["message"].lower()
    assert (await edit(editor, image)).data  # still serving


async def test_raw_form_errors(editor: ServerProcess, image: Image.Image) -> None:
    async with httpx.AsyncClient(base_url=editor.url) as http:
        before = (await http.get(f"{editor.base}/metrics")).text
        no_image = await http.post("/images/edits", data={"prompt": "x"}, files={"mask": ("m.png", png_bytes(image))})
        assert no_image.status_code == 422 and "mask" in no_image.json()["error"]["message"]
        no_prompt = await http.post("/images/edits", files={"image": ("a.png", png_bytes(image))})
        assert no_prompt.status_code == 422 and "prompt" in no_prompt.json()["error"]["message"]
        as_json = await http.post("/images/edits", json={"prompt": "x"})
        assert as_json.status_code == 400 and "multipart" in as_json.json()["error"]["message"]
        unreadable = await http.post("/images/edits", data={"prompt": "x"}, files={"image": ("a.png", b"not a png")})
        assert unreadable.status_code == 400 and unreadable.json()["error"]["code"] == "invalid_image"
        after = (await http.get(f"{editor.base}/metrics")).text

    def more(kind: str) -> float:
        name, labels = "thinkedit_editor_errors_total", f'kind="{kind}"'
        return metric(after, name, labels) - metric(before, name, labels)

    # A body that is not a form is a bad request; only the image that cannot be read counts as a bad image.
    assert (more("bad_request"), more("bad_image"), more("validation")) == (1, 1, 2)


async def test_token_is_required_on_every_request(small: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=small.base) as http:
        for path in ("/health", "/v1/models", "/metrics"):
            assert (await http.get(path)).status_code == 401
        wrong = await http.get("/health", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert (await http.get("/health", headers=small.headers)).status_code == 200
    with pytest.raises(openai.AuthenticationError):
        await openai.AsyncOpenAI(base_url=small.url, api_key="nope", max_retries=0).models.list()
    assert (await client(small).models.list()).data[0].id == "tiny-kontext"


async def test_oversized_body_is_413(small: ServerProcess) -> None:
    payload = b"\x89PNG" + bytes(2 * 1024 * 1024)
    with pytest.raises(openai.APIStatusError) as caught:
        await client(small).images.edit(image=("big.png", payload, "image/png"), prompt="x")
    assert caught.value.status_code == 413


async def test_our_client_sends_the_token_from_the_environment(
    small: ServerProcess, image: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    from thinkedit.tools.config import EditorConfig
    from thinkedit.tools.editors.openai_images import OpenAIImagesEditor
    from thinkedit.tools.errors import BackendError, TransientBackendError
    from thinkedit.tools.types import EditRequest

    config = EditorConfig(backend="openai-images", model="tiny-kontext", base_url=small.url)
    monkeypatch.setenv("THINKEDIT_TOKEN", TOKEN)
    assert (await OpenAIImagesEditor(config).edit(EditRequest(image=image, instruction="x"))).image.size == image.size
    monkeypatch.setenv("THINKEDIT_TOKEN", "wrong")
    with pytest.raises(BackendError, match="401") as caught:
        await OpenAIImagesEditor(config).edit(EditRequest(image=image, instruction="x"))
    assert not isinstance(caught.value, TransientBackendError)
