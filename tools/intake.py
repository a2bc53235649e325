"""Turn whatever a camera or an app wrote into the upright sRGB RGB picture a viewer shows.

Phone photos store their orientation in an EXIF tag, print files are CMYK, scans are 16-bit
grey, web graphics are palettes or carry alpha, and wide-gamut photos embed an ICC profile. The
editors and thinkers all want plain 8-bit sRGB RGB, upright: this module is the one place that
makes it, so every door (CLI, MCP, editor server, eval readers) sees the same pixels.
"""

from __future__ import annotations

import functools
import io
import logging

from PIL import Image, ImageChops, ImageCms, ImageOps

log = logging.getLogger(__name__)

#: Colour a transparent pixel becomes: editors take RGB, and white is what a viewer's page shows.
ALPHA_BACKGROUND = (255, 255, 255)
#: Key in ``Image.info`` under which ``load_image`` leaves notes about what it changed.
NOTES_KEY = "thinkedit.notes"


@functools.cache
def register_plugins() -> None:
    """Let PIL open HEIC/HEIF (pillow-heif); AVIF and WebP are Pillow's own."""
    try:
        import pillow_heif
    except ModuleNotFoundError:  # a core dependency; its absence is reported when a HEIC file is opened
        log.debug("pillow-heif is not installed: HEIC/HEIF images cannot be read")
        return
    pillow_heif.register_heif_opener()


def first_frame_note(image: Image.Image) -> str | None:
    """Seek to the first frame of an animated image and return a note saying so (None for stills)."""
    frames = int(getattr(image, "n_frames", 1) or 1)
    if frames <= 1:
        return None
    image.seek(0)
    return f"animated image with {frames} frames: the first frame was used"


def normalise(image: Image.Image) -> tuple[Image.Image, list[str]]:
    """Return the image upright, in 8-bit sRGB RGB (alpha composited on white), and notes on what changed."""
    notes: list[str] = []
    icc = image.info.get("icc_profile")
    upright = ImageOps.exif_transpose(image)
    if upright.size != image.size or _orientation(image) not in (None, 1):
        notes.append(f"EXIF orientation {_orientation(image)} applied")
    image = upright
    alpha: Image.Image | None = None
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        image = _sixteen_to_eight(image)
    elif image.mode == "F":
        image = image.point(lambda v: v * 255).convert("L") if _is_unit_range(image) else image.convert("L")
    if image.mode in ("RGBa", "La"):  # premultiplied alpha
        image = image.convert("RGBA")
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
