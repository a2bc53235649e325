"""Load, validate and reshape images; every user-supplied image goes through ``load_image``."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from thinkedit.tools.artifact_cache import DecodedCache
from thinkedit.tools.errors import BadInputError, ImageTooLargeError
from thinkedit.tools.intake import NOTES_KEY, first_frame_note, normalise, register_plugins
from thinkedit.tools.png import can_encode, encode_png

#: Refuse images with more pixels than this (about 64 MP) by default; PIL's own bomb guard is the backstop.
MAX_PIXELS = 64 * 1024 * 1024
#: The limit every server applies to a client's image (4096x4096, about 16.8 MP): the editor, thinker
#: and MCP servers agree, so an image one takes the others take too, and decoding one stays seconds.
SERVER_MAX_PIXELS = 4096 * 4096
#: Refuse image files larger than this before reading them (room for a PNG of noise at the pixel limit).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Decoded pixels ``load_image`` keeps per process, by the file's content: the same photo submitted
#: again (another run on it, each round's upload of the source to an editor server) is decoded once.
INTAKE_CACHE_BYTES = 64 * 1024 * 1024

_INTAKE = DecodedCache(INTAKE_CACHE_BYTES)


def load_image(
    source: str | Path | bytes, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_FILE_BYTES,
    label: str | None = None, cache: bool = True,
) -> Image.Image:
    """Decode a file or bytes into the upright sRGB RGB image a viewer shows, or raise ``BadInputError``.

    EXIF orientation is applied, ICC profiles converted, CMYK/16-bit/grey/palette turned into RGB,
    alpha composited on white, and an animated image gives its first frame; what was changed is
    listed in ``image.info[NOTES_KEY]`` (read it with ``intake_notes``). Errors name the problem
    (and ``label``); a file is size-checked before it is read. ``cache``: keep (and look up) the
    result by the bytes' content, for inputs that come again; images seen once (an editor's
    answer) or cached elsewhere (the artifact store's) pass False.
    """
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


#: The level for PNGs that cross a local link or go to disk: lossless like any level, and written by
#: our own encoder (``tools.png``: "Up"-filtered rows, RLE deflate) for 8-bit L/RGB/RGBA. It encodes
#: several times faster than PIL's default level for files only a little larger, so every PNG
#: thinkedit sends or stores uses it: the time a higher level costs is made back only on a slow link.
FAST_PNG_LEVEL = 1


def to_png_bytes(image: Image.Image, *, compress_level: int = 6) -> bytes:
    """Encode as PNG (zlib ``compress_level`` 0-9: ``FAST_PNG_LEVEL`` is fast, 6 is PIL's default)."""
    if compress_level == FAST_PNG_LEVEL and can_encode(image):
        return encode_png(image)
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def downscale_png(image: Image.Image, max_bytes: int, *, min_side: int = 64) -> bytes:
    """Return PNG bytes under ``max_bytes``, halving the image until it fits."""
    current = image.convert("RGB")
    while True:
        data = to_png_bytes(current)
        if len(data) <= max_bytes or max(current.size) <= min_side:
            return data
        current = current.resize(
            (max(1, current.width * 3 // 4), max(1, current.height * 3 // 4)),
            Image.Resampling.LANCZOS,
        )
