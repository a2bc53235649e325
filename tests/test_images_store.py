"""Image validation, reshaping and the content-addressed store."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import pytest
from PIL import Image

from thinkedit.tools.errors import BadInputError
from thinkedit.tools.images import crop_to_multiple, fit_within, load_image, resize_to
from thinkedit.tools.store import ArtifactStore, downscale_png


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_load_image_accepts_files_and_bytes(tmp_path: Path, photo: Image.Image) -> None:
    path = tmp_path / "a.png"
    photo.save(path)
    assert load_image(path).size == photo.size
    assert load_image(png_bytes(photo)).mode == "RGB"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.png", "image not found"),
        (lambda d: d, "not a file"),
    ],
)
def test_load_image_path_errors(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        load_image(make(tmp_path))


def test_load_image_rejects_garbage(photo: Image.Image) -> None:
    with pytest.raises(BadInputError, match="empty"):
        load_image(b"")
    with pytest.raises(BadInputError, match="not an image"):
        load_image(b"hello, I am text")
    data = png_bytes(photo)
    with pytest.raises(BadInputError, match="truncated"):
        load_image(data[: len(data) // 2])


def test_load_image_rejects_too_many_pixels() -> None:
    big = png_bytes(Image.new("RGB", (300, 300)))
    with pytest.raises(BadInputError, match="too large"):
        load_image(big, max_pixels=200 * 200)


def test_load_image_rejects_decompression_bomb() -> None:
    # A tiny file that claims to be enormous: a PNG header for 100000x100000 pixels.
    raw = Image.new("1", (1, 1))
    data = bytearray(png_bytes(raw))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = (100_000).to_bytes(4, "big") * 2
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17])).to_bytes(4, "big")
    data[ihdr + 17 : ihdr + 21] = crc
    with pytest.raises(BadInputError, match="too large"):
        load_image(bytes(data))


@pytest.mark.parametrize("size", [(451, 300), (16, 16), (17, 33), (600, 400)])
def test_crop_to_multiple(size: tuple[int, int]) -> None:
    out = crop_to_multiple(Image.new("RGB", size))
    assert out.width % 16 == 0 and out.height % 16 == 0
    assert out.width <= max(size[0], 16) and out.height <= max(size[1], 16)


def test_fit_within_and_resize_back() -> None:
    image = Image.new("RGB", (600, 400))
    small = fit_within(image, 256)
    assert max(small.size) <= 256 and small.width % 16 == 0 and small.height % 16 == 0
    assert resize_to(small, image.size).size == image.size


def test_downscale_png_respects_budget(photo: Image.Image) -> None:
    noisy = Image.effect_noise((800, 800), 100).convert("RGB")
    data = downscale_png(noisy, 100_000)
    assert len(data) <= 100_000
    assert Image.open(io.BytesIO(data)).width < 800


def test_store_is_content_addressed(tmp_path: Path, photo: Image.Image) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    ref = store.put(photo)
    again = store.put(photo.copy())
    assert ref == again
    assert (ref.width, ref.height) == photo.size
    assert store.path(ref) == Path(ref.uri)  # path() waits for the write behind put()
    assert Path(ref.uri).is_file() and Path(ref.uri).name == f"{ref.sha256}.png"
    assert store.get(ref).tobytes() == photo.tobytes()
    assert Image.open(ref.uri).convert("RGB").tobytes() == photo.tobytes()  # lossless on disk too
    other = store.put(photo.rotate(90, expand=True))
    assert other.sha256 != ref.sha256
    assert not list((tmp_path / "artifacts").rglob("*.part"))


def test_store_rejects_foreign_refs(tmp_path: Path, photo: Image.Image) -> None:
    ref = ArtifactStore(tmp_path / "a").put(photo)
    with pytest.raises(BadInputError, match="not in the artifact store"):
        ArtifactStore(tmp_path / "b").get(ref)
