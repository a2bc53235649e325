"""Make real-world-shaped image files (phone EXIF orientations, CMYK, 16-bit, HEIC, ...) in memory."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

from PIL import Image

#: What each orientation tag's stored pixels must be transposed by to look as a viewer shows them
#: inverted: applying this to the displayed picture gives what the camera stores.
_STORE = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}

RED, GREEN, BLUE, WHITE = (220, 30, 30), (30, 200, 40), (30, 40, 220), (255, 255, 255)


def quadrants(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """Return a landscape picture with a distinct colour per quadrant, so any flip or turn shows."""
    w, h = size
    image = Image.new("RGB", size, WHITE)
    for (x, y), colour in {(0, 0): RED, (1, 0): GREEN, (0, 1): BLUE}.items():
        image.paste(colour, (x * w // 2, y * h // 2, (x + 1) * w // 2, (y + 1) * h // 2))
    return image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


def phone_jpeg(displayed: Image.Image, orientation: int) -> bytes:
    """Return a JPEG storing ``displayed`` the way a camera held at ``orientation`` does, tag included."""
    step = _STORE[orientation]
    stored = displayed if step is None else displayed.transpose(step)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)


def _curve(gamma: float) -> bytes:
    return b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)


def _desc(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(raw)) + raw + bytes(4 + 4 + 2 + 1 + 67)


# sRGB's primaries adapted to D50 (the ICC connection space).
SRGB_RED, SRGB_GREEN, SRGB_BLUE = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)


def swapped_primaries_profile() -> bytes:
    """Return an ICC v2 RGB profile whose red and green primaries are sRGB's swapped (red pixels are green)."""
    return rgb_profile("red-green swapped test RGB", SRGB_GREEN, SRGB_RED, SRGB_BLUE, gamma=2.2)


def rgb_profile(
    description: str, red: tuple[float, float, float], green: tuple[float, float, float],
    blue: tuple[float, float, float], *, gamma: float,
) -> bytes:
    """Return an ICC v2 matrix/TRC RGB profile with these D50 primaries and one gamma curve for all three."""
    tags = [
        (b"desc", _desc(description)),
        (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz(*red)),
        (b"gXYZ", _xyz(*green)),
        (b"bXYZ", _xyz(*blue)),
        (b"rTRC", _curve(gamma)),
        (b"gTRC", _curve(gamma)),
        (b"bTRC", _curve(gamma)),
        (b"cprt", b"text" + bytes(4) + b"none\0"),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        data += bytes(-(offset + len(data)) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    body = struct.pack(">I", len(tags)) + table + data
    header = (
        struct.pack(">I", 128 + len(body)) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
        + bytes(12) + b"acsp" + bytes(28) + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + bytes(48)
    )
    return header + body


@dataclass
class Sample:
    """One file as a user would hand it over, and what a viewer shows for it."""

    name: str
    data: bytes
    size: tuple[int, int]  # displayed (width, height)
    colour: tuple[int, int, int] | None = None  # the top-left quadrant's displayed colour, when known
    notes: list[str] = field(default_factory=list)  # substrings expected among the intake notes


def samples() -> list[Sample]:
    """Return every real-world shape the intake must read, each with its displayed size and colour."""
    shown = quadrants()
    out = [  # orientations 5-8 store the picture turned: a portrait file that displays as landscape
        Sample(f"orientation-{o}.jpg", phone_jpeg(shown, o), shown.size, RED,
               [f"orientation {o}"] if o > 1 else [])
        for o in range(1, 9)
    ]
    cmyk = Image.new("CMYK", shown.size, (0, 255, 255, 0))  # pure red ink
    out.append(Sample("cmyk.jpg", encode(cmyk, "JPEG", quality=95), shown.size, (255, 0, 0)))
    deep = Image.new("I;16", shown.size)
    deep.putdata([40000] * (shown.width * shown.height))
    out.append(Sample("deep-16bit.png", encode(deep, "PNG"), shown.size, (155, 155, 155)))
    out.append(Sample("grey.png", encode(shown.convert("L"), "PNG"), shown.size, None))
    palette = Image.new("P", shown.size, 1)
    palette.putpalette([0, 0, 0, *RED] + [0] * 762)
    palette.paste(0, (0, 0, shown.width // 2, shown.height // 2))
    out.append(Sample("palette-transparent.png", encode(palette, "PNG", transparency=0), shown.size, WHITE,
                      ["composited on white"]))
    rgba = shown.convert("RGBA")
    rgba.paste((0, 0, 0, 0), (0, 0, shown.width // 2, shown.height // 2))
    out.append(Sample("rgba.png", encode(rgba, "PNG"), shown.size, WHITE, ["composited on white"]))
    tagged = encode(Image.new("RGB", shown.size, (255, 0, 0)), "PNG", icc_profile=swapped_primaries_profile())
    out.append(Sample("icc-tagged.png", tagged, shown.size, (0, 255, 0), ["ICC profile converted"]))
    out.append(Sample("phone.heic", heic(shown), shown.size, RED))
    out.append(Sample("web.webp", encode(shown, "WEBP", quality=95), shown.size, RED))
    out.append(Sample("web.avif", encode(shown, "AVIF", quality=95), shown.size, RED))
    frames = [shown, Image.new("RGB", shown.size, BLUE)]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    out.append(Sample("animated.gif", gif, shown.size, RED, ["2 frames: the first frame was used"]))
    return out


def heic(image: Image.Image) -> bytes:
    """Encode as HEIC with pillow-heif's writer, as a phone would store it."""
    import pillow_heif

    buf = io.BytesIO()
    pillow_heif.from_pillow(image).save(buf, format="HEIF", quality=95)
    return buf.getvalue()


def close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 40) -> bool:
    """Say whether two colours match within lossy-codec tolerance."""
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def top_left(image: Image.Image) -> tuple[int, int, int]:
    """Return the colour in the middle of the top-left quadrant."""
    return image.convert("RGB").getpixel((image.width // 4, image.height // 4))  # type: ignore[return-value]
