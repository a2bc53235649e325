"""Read images: every user-supplied image goes through ``load_image`` and comes out as a viewer shows it.

Phone photos store their orientation in an EXIF tag, print files are CMYK, scans are 16-bit
grey, web graphics are palettes or carry alpha, and wide-gamut photos embed an ICC profile. The
editors and thinkers all want plain 8-bit sRGB RGB, upright: this module is the one place that
makes it, so every door (CLI, MCP, editor server, eval readers) sees the same pixels. It also
reshapes images to the sizes editors take.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import stat
import warnings
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageChops, ImageCms, ImageOps, UnidentifiedImageError

from thinkedit.tools.artifact_cache import DecodedCache
from thinkedit.tools.errors import BadInputError, ImageTooLargeError
from thinkedit.tools.types import MAX_REFERENCES

log = logging.getLogger(__name__)

#: Colour a transparent pixel becomes: editors take RGB, and white is what a viewer's page shows.
ALPHA_BACKGROUND = (255, 255, 255)
#: Key in ``Image.info`` under which ``load_image`` leaves notes about what it changed.
NOTES_KEY = "thinkedit.notes"
#: Refuse images with more pixels than this by default; PIL's own bomb guard is the backstop.
MAX_PIXELS = 64 * 1024 * 1024
#: The limit every server applies to a client's image (4096x4096): the editor, thinker and MCP
#: servers agree, so an image one takes the others take too.
SERVER_MAX_PIXELS = 4096 * 4096
#: Refuse image files larger than this before reading them (room for a PNG of noise at the pixel limit).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Decoded pixels ``load_image`` keeps per process, by the file's content: the same photo submitted
#: again (another run on it, each round's upload of the source to an editor server) is decoded once.
INTAKE_CACHE_BYTES = 64 * 1024 * 1024

_INTAKE = DecodedCache(INTAKE_CACHE_BYTES)


def load_image(
    source: str | Path | bytes | Image.Image, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_FILE_BYTES,
    label: str | None = None, cache: bool = True,
) -> Image.Image:
    """Decode a file or bytes into the upright sRGB RGB image a viewer shows, or raise ``BadInputError``.

    EXIF orientation is applied, ICC profiles converted, CMYK/16-bit/grey/palette turned into RGB,
    alpha composited on white, and an animated image gives its first frame; what was changed is
    listed in ``image.info[NOTES_KEY]`` (read it with ``intake_notes``). Errors name the problem
    (and ``label``); a file is size-checked before it is read. ``cache``: keep (and look up) the
    result by the bytes' content, for inputs that come again; images seen once (an editor's
    answer) or cached elsewhere (the artifact store's) pass False. A PIL image (a Python caller's)
    is normalised the same way, as a copy, unless ``load_image`` made it.
    """
    if isinstance(source, Image.Image):
        return _take(source, max_pixels, label or "image")
    label = label or ("image data" if isinstance(source, bytes) else str(source))
    data = source if isinstance(source, bytes) else read_file(Path(source), max_bytes)
    if not data:
        raise BadInputError(f"{label} is empty")
    if not cache:
        return _decode(data, max_pixels, label)
    key = hashlib.blake2b(data, digest_size=32).hexdigest()
    if (known := _INTAKE.get(key)) is not None:
        _check_pixels(known.size, max_pixels, label)
        known.info[NOTES_KEY] = list(known.info[NOTES_KEY])  # the copy's own list
        return known
    picture = _decode(data, max_pixels, label)
    _INTAKE.put(key, picture.copy())  # the cache's own copy: callers may change theirs
    return picture


def check_references(references: Sequence[object]) -> None:
    """Refuse more reference images than an image may bring (``MAX_REFERENCES``), before any is read."""
    if len(references) > MAX_REFERENCES:
        raise BadInputError(
            f"{len(references)} reference images; an image takes at most {MAX_REFERENCES} (image 2, image 3)"
        )


def load_references(references: Sequence[str | Path | bytes | Image.Image]) -> list[Image.Image]:
    """Decode the reference images that go with an image (``load_image``), refusing more than ``MAX_REFERENCES``."""
    check_references(references)
    return [load_image(ref) for ref in references]


def _decode(data: bytes, max_pixels: int, label: str) -> Image.Image:
    """Decode and normalise ``data`` (``load_image`` without the cache)."""
    register_plugins()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                _check_pixels(im.size, max_pixels, label)
                frame_note = first_frame_note(im)
                im.load()
                picture, notes = normalise(im)
                if picture is im:  # never hand out the object the ``with`` block closes
                    picture = im.copy()
                picture.info[NOTES_KEY] = ([frame_note] if frame_note else []) + notes
                return picture
    except BadInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{label} is too large (decompression bomb guard): {exc}") from exc
    except UnidentifiedImageError as exc:
        raise BadInputError(f"{label} is not an image PIL can read") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInputError(f"{label} is a damaged or truncated image: {exc}") from exc


def _take(image: Image.Image, max_pixels: int, label: str) -> Image.Image:
    """Return an in-memory image as ``load_image`` returns a file's: normalised and noted (its own results as is)."""
    if NOTES_KEY in image.info:
        return image
    _check_pixels(image.size, max_pixels, label)
    try:
        picture, notes = normalise(image)
    except ValueError as exc:  # a mode PIL cannot convert to RGB
        raise BadInputError(f"{label} is in a mode thinkedit cannot read ({image.mode}): {exc}") from exc
    picture = picture.copy() if picture is image else picture  # the caller's image is left as it was
    picture.info[NOTES_KEY] = notes
    return picture


def _check_pixels(size: tuple[int, int], max_pixels: int, label: str) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLargeError(f"{label} is too large: {width}x{height} exceeds {max_pixels} pixels")


def intake_notes(image: Image.Image) -> list[str]:
    """Return what ``load_image`` changed about an image (orientation, colour, frames), if anything."""
    return list(image.info.get(NOTES_KEY, []))


def read_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Read a whole image file, refusing a missing one, a non-file or one past ``max_bytes`` first."""
    if "\0" in str(path):
        raise BadInputError(f"image path {str(path)!r} contains a NUL byte")
    try:
        # Non-blocking, so a FIFO or device named as an image is refused instead of hanging the read.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise BadInputError(f"image not found: {path}") from None
    except OSError as exc:
        raise BadInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return read_fd(fd, str(path), max_bytes)


def read_fd(fd: int, label: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Read an open file to its end and close it, refusing a non-file or one past ``max_bytes``."""
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode) or not stat.S_ISREG(info.st_mode):
            raise BadInputError(f"not a file: {label}")
        if info.st_size > max_bytes:
            raise ImageTooLargeError(f"{label} is too large: {info.st_size} bytes, the limit is {max_bytes} bytes")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:  # it grew after the check
            raise ImageTooLargeError(f"{label} is larger than the limit of {max_bytes} bytes")
        return data
    except OSError as exc:
        raise BadInputError(f"cannot read {label}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def crop_to_multiple(image: Image.Image, multiple: int = 16) -> Image.Image:
    """Centre-crop so both sides are multiples of ``multiple``, as the editors require."""
    width, height = image.size
    new_w = max(multiple, width - width % multiple)
    new_h = max(multiple, height - height % multiple)
    if (new_w, new_h) == (width, height):
        return image
    if width < multiple or height < multiple:
        return image.resize((new_w, new_h), Image.Resampling.LANCZOS)
    left = (width - new_w) // 2
    top = (height - new_h) // 2
    return image.crop((left, top, left + new_w, top + new_h))


def fit_within(image: Image.Image, max_side: int | None, multiple: int = 16) -> Image.Image:
    """Downscale so the longer side is at most ``max_side``, keeping sides multiples of ``multiple``."""
    width, height = image.size
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width = max(multiple, round(width * scale / multiple) * multiple)
        height = max(multiple, round(height * scale / multiple) * multiple)
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    return crop_to_multiple(image, multiple)


def resize_to(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize an editor's output back to the input's size (no-op when it already matches)."""
    if image.size == tuple(size):
        return image
    return image.resize(size, Image.Resampling.LANCZOS)


@functools.cache
def register_plugins() -> None:
    """Let PIL open HEIC/HEIF (pillow-heif); AVIF and WebP are Pillow's own."""
    try:
        import pillow_heif
    except ModuleNotFoundError:  # a core dependency; its absence is reported when a HEIC file is opened
        log.debug("pillow-heif is not installed: HEIC/HEIF images cannot be read")
        return
    pillow_heif.register_heif_opener()


#: Frames counted for the note on an animated image: counting means seeking through them all, and a small
#: file can hold millions.
MAX_COUNTED_FRAMES = 1000
#: Canvas pixels the frames counted may add up to: each seek composes a frame on the whole canvas, so a tiny
#: file of 1-pixel frames on a large canvas would otherwise cost far more work than its size suggests.
MAX_COUNTED_FRAME_PIXELS = 64 * 1024 * 1024


def first_frame_note(image: Image.Image) -> str | None:
    """Seek to the first frame of an animated image and return a note saying so (None for stills)."""
    if not getattr(image, "is_animated", False):
        return None
    most = max(1, min(MAX_COUNTED_FRAMES, MAX_COUNTED_FRAME_PIXELS // max(1, image.width * image.height)))
    frames = 1
    try:
        while frames <= most:
            image.seek(frames)
            frames += 1
    except EOFError:
        pass
    image.seek(0)
    counted = f"more than {most}" if frames > most else str(frames)
    return f"animated image with {counted} frames: the first frame was used"


def normalise(image: Image.Image) -> tuple[Image.Image, list[str]]:
    """Return the image upright, in 8-bit sRGB RGB (alpha composited on white), and notes on what changed."""
    notes: list[str] = []
    icc = image.info.get("icc_profile")
    if _orientation(image) not in (None, 1):  # a damaged EXIF block reads as none: the pixels are still good
        upright = ImageOps.exif_transpose(image)
        notes.append(f"EXIF orientation {_orientation(image)} applied")
        image = upright
    alpha: Image.Image | None = None
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        image = _sixteen_to_eight(image)
    elif image.mode == "F":
        image = image.point(lambda v: v * 255).convert("L") if _is_unit_range(image) else image.convert("L")
    if image.mode in ("RGBa", "La"):  # premultiplied alpha (PIL converts La only to LA)
        image = image.convert("RGBA" if image.mode == "RGBa" else "LA")
    if image.mode in ("RGBA", "LA", "PA"):
        alpha = image.getchannel("A")
        image = image.convert("L" if image.mode == "LA" else "RGB")  # grey stays grey for a grey ICC profile
    if icc:
        converted = _to_srgb(image, icc)
        if converted is not None and converted is not image:  # an sRGB profile needs no conversion
            image = converted
            notes.append("embedded ICC profile converted to sRGB")
    if image.mode != "RGB":
        image = image.convert("RGB")
    if alpha is not None:
        if alpha.getextrema()[0] < 255:
            notes.append("transparent pixels composited on white")
        background = Image.new("RGB", image.size, ALPHA_BACKGROUND)
        background.paste(image, mask=alpha)
        image = background
    return image, notes


def _orientation(image: Image.Image) -> int | None:
    """Return the EXIF orientation tag (1-8), or None when the image has none."""
    try:
        return image.getexif().get(0x0112)
    except Exception:  # a damaged EXIF block is no reason to refuse the picture
        return None


def _sixteen_to_eight(image: Image.Image) -> Image.Image:
    """Scale a 16-bit (or 32-bit integer) grey image to 8 bits, rather than clip it to white."""
    sixteen = image.mode.startswith("I;16")
    image = image.convert("I")
    scale = 1 / 257 if sixteen or image.getextrema()[1] > 255 else 1
    return image.point(lambda v: v * scale).convert("L")


@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    """Return the sRGB profile every image is converted to (built once; it never changes)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _is_unit_range(image: Image.Image) -> bool:
    """Say whether a float image's values lie in 0..1 (so they scale to 0..255)."""
    low, high = image.getextrema()
    return 0.0 <= low and high <= 1.0


def _to_srgb(image: Image.Image, icc: bytes) -> Image.Image | None:
    """Convert pixels from their embedded profile to sRGB; None (with a warning) if the profile is unusable.

    An RGB image tagged with a profile that is sRGB already (most photos, and every image saved
    from a browser or an sRGB editor) comes back unchanged: converting it would spend the time of a
    full colour transform, which grows with the pixel count, moving no colour.
    """
    try:
        transform = _transform(icc, image.mode)
        return image if transform is None else ImageCms.applyTransform(image, transform)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
        log.warning("ignoring an embedded ICC profile that cannot be applied to a %s image: %s", image.mode, exc)
        return None


#: How far (per 8-bit channel) a profile's transform may move a colour and still count as sRGB.
IDENTITY_TOLERANCE = 1


@functools.lru_cache(maxsize=32)
def _transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """Build the transform from ``icc`` to sRGB for ``mode`` once; None when it moves no colour.

    Whether it moves any is checked on a probe of the RGB cube (17 levels a channel) plus every
    grey: a transform is smooth, so one that holds each probe within ``IDENTITY_TOLERANCE`` holds
    every colour about as close, and a real gamut or tone difference moves many probes by far more.
    """
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    transform = ImageCms.buildTransform(source, _srgb(), mode, "RGB")
    if mode == "RGB":
        probe = _probe()
        moved = ImageChops.difference(ImageCms.applyTransform(probe, transform), probe).getextrema()
        if max(high for _, high in moved) <= IDENTITY_TOLERANCE:
            return None
    return transform


@functools.cache
def _probe() -> Image.Image:
    """Return an RGB image of 17 levels per channel (every 16th value, and 255) followed by all 256 greys."""
    levels = [*range(0, 256, 16), 255]
    colours = [(r, g, b) for r in levels for g in levels for b in levels] + [(v, v, v) for v in range(256)]
    probe = Image.new("RGB", (len(colours), 1))
    probe.putdata(colours)
    return probe
