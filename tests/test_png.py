"""The fast PNG encoder: lossless for every 8-bit mode and shape, a valid file, about as small as PIL's."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from PIL import Image

from tests.conftest import EXAMPLES
from thinkedit.tools import store
from thinkedit.tools.store import FAST_PNG_LEVEL, to_png_bytes


def noise(mode: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    rng = random.Random(seed)
    return Image.frombytes(mode, size, rng.randbytes(size[0] * size[1] * len(Image.new(mode, (1, 1)).getbands())))


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Split a PNG into (type, data) chunks, checking the signature and every CRC on the way."""
    assert data[:8] == store.SIGNATURE
    found, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length:at + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        found.append((kind, body))
        at += 12 + length
    return found


def decoded(data: bytes) -> Image.Image:
    Image.open(io.BytesIO(data)).verify()
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
@pytest.mark.parametrize("size", [(1, 1), (1, 9), (9, 1), (37, 23)])
@pytest.mark.parametrize("band_bytes", [store.BAND_BYTES, 50])  # 50: a band of one or a few rows
def test_every_pixel_comes_back(mode: str, size: tuple[int, int], band_bytes: int, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(store, "BAND_BYTES", band_bytes)
    image = noise(mode, size, seed=size[0] * 31 + size[1])
    back = decoded(store.encode_png(image))
    assert back.mode == mode and back.size == size and back.tobytes() == image.tobytes()


def test_the_file_is_a_plain_png_with_up_filtered_rows(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(store, "BAND_BYTES", 1000)  # several bands: several IDAT chunks, one zlib stream
    image = noise("RGB", (40, 30))
    parts = chunks(store.encode_png(image))
    kinds = [kind for kind, _ in parts]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and set(kinds[1:-1]) == {b"IDAT"} and len(kinds) > 3
    assert struct.unpack(">IIBBBBB", parts[0][1]) == (40, 30, 8, 2, 0, 0, 0)
    raw = zlib.decompress(b"".join(body for kind, body in parts if kind == b"IDAT"))
    rows = [raw[i:i + 1 + 40 * 3] for i in range(0, len(raw), 1 + 40 * 3)]
    assert len(rows) == 30 and {row[0] for row in rows} == {2}


def test_a_photo_is_as_small_as_pils_fast_level_and_stays_exact() -> None:
    photo = Image.open(EXAMPLES / "chelsea.png").convert("RGB")
    ours = store.encode_png(photo)
    buf = io.BytesIO()
    photo.save(buf, format="PNG", compress_level=FAST_PNG_LEVEL)
    assert len(ours) <= 1.05 * len(buf.getvalue()), (len(ours), len(buf.getvalue()))
    assert decoded(ours).tobytes() == photo.tobytes()


def test_flat_areas_pack_tightly() -> None:
    """A flat picture is mostly zero differences: RLE deflate packs it to a sliver of its raw size."""
    data = store.encode_png(Image.new("RGB", (512, 512), (200, 30, 90)))
    assert len(data) < 512 * 512 * 3 // 100 and decoded(data).getcolors() == [(512 * 512, (200, 30, 90))]


@pytest.mark.parametrize("mode", ["1", "P", "I;16", "LA", "CMYK"])
def test_other_modes_go_to_pil(mode: str) -> None:
    image = Image.new(mode, (5, 4))
    assert not store.can_encode(image)
    with pytest.raises(ValueError, match=mode):
        store.encode_png(image)
    if mode != "CMYK":  # PNG has no CMYK; PIL refuses it too
        assert decoded(to_png_bytes(image, compress_level=FAST_PNG_LEVEL)).size == (5, 4)


def test_to_png_bytes_uses_it_only_at_the_fast_level() -> None:
    image = noise("RGB", (16, 16))
    assert to_png_bytes(image, compress_level=FAST_PNG_LEVEL) == store.encode_png(image)
    slow = to_png_bytes(image)  # level 6: PIL's encoder, its own filter choice
    assert slow != store.encode_png(image) and decoded(slow).tobytes() == image.tobytes()
