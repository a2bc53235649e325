"""Turn an image argument into pixels: a confined file path, a data: URI, a thinkedit:// URI.

Paths are resolved (symlinks included) before they are checked against the allowed roots, so a
link inside a root that points outside it is refused, and the file is then opened by descriptor
along the checked path (``open_beneath``), so swapping a folder for a symlink between the
check and the read leaks nothing. URLs are fetched only when the server was started with
``--allow-urls``, and only from public addresses (``fetch``). Decoding runs off the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL.Image import Image

from thinkedit.agent.runs import Runner
from thinkedit.servers.mcp.fetch import AddressPolicy, fetch_image_bytes, public_only
from thinkedit.servers.mcp.refs import SCHEME, resolve_uri
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.images import MAX_FILE_BYTES, SERVER_MAX_PIXELS, load_image, read_fd

log = logging.getLogger(__name__)

#: Default limit of an image passed inline (data: URI) or fetched from a URL, decoded.
DEFAULT_MAX_IMAGE_BYTES = 8 * 1024 * 1024

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def default_roots(data_dir: Path, cwd: Path | None = None) -> list[Path]:
    """Return the working directory and the data directory (never a filesystem root)."""
    roots = [Path(data_dir).expanduser()]
    here = (cwd or Path.cwd()).resolve()
    if here == Path(here.anchor):
        log.warning("working directory %s is a filesystem root; not allowing it (use --allow-root)", here)
    else:
        roots.insert(0, here)
    return roots


@dataclass
class ImageResolver:
    """Resolve image arguments under a fixed policy: roots, size limit, URL fetching on/off."""

    runner: Runner
    roots: list[Path]
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    allow_urls: bool = False
    max_pixels: int = SERVER_MAX_PIXELS
    url_policy: AddressPolicy = public_only
    _resolved_roots: list[Path] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._resolved_roots = [Path(r).expanduser().resolve() for r in self.roots]

    @property
    def allowed_roots(self) -> list[Path]:
        """Return the roots, resolved."""
        return list(self._resolved_roots)

    async def load(self, text: str) -> Image:
        """Return the image ``text`` names, or raise ``BadInputError`` saying what is wrong."""
        text = text.strip()
        if not text:
            raise BadInputError("image is empty")
        if "\0" in text:
            raise BadInputError("image argument contains a NUL byte; pass a plain path, a data: URI or a thinkedit:// URI")
        if text.startswith("data:"):
            data = self._decode_data_uri(text)
            return await asyncio.to_thread(load_image, data, max_pixels=self.max_pixels)
        if text.startswith(SCHEME):
            ref = await resolve_uri(self.runner, text)
            return await asyncio.to_thread(self.runner.store.get, ref)
        scheme = urlparse(text).scheme.lower()
        if scheme in {"http", "https"}:
            data = await self._fetch(text)
            return await asyncio.to_thread(load_image, data, max_pixels=self.max_pixels)
        if scheme == "file":
            text = unquote(urlparse(text).path)
            if "\0" in text:
                raise BadInputError("image path contains a NUL byte")
        elif len(scheme) > 1:
            raise BadInputError(
                f"unsupported image URI scheme {scheme!r}: use a path, a data: URI or a thinkedit:// URI"
            )
        return await asyncio.to_thread(self._load_confined, text)

    def _load_confined(self, text: str) -> Image:
        """Check ``text`` against the roots, open it by descriptor along the checked path, decode it."""
        real = self.confine(text)
        root = next(r for r in self._resolved_roots if real.is_relative_to(r))
        fd = open_beneath(real, root, text)
        return load_image(read_fd(fd, text, MAX_FILE_BYTES), max_pixels=self.max_pixels, label=text)

    def confine(self, text: str) -> Path:
        """Return the real path of ``text`` if it lies under an allowed root, else raise."""
        given = Path(text).expanduser()
        absolute = given if given.is_absolute() else Path.cwd() / given
        try:
            real = absolute.resolve()
        except OSError as exc:  # a link on the path vanished while it was being followed
            raise BadInputError(f"{text} changed while it was being checked ({exc.strerror}); refused") from None
        if any(real.is_relative_to(root) for root in self._resolved_roots):
            return real
        roots = ", ".join(str(r) for r in self._resolved_roots)
        lexical = Path(os.path.normpath(absolute))
        if any(lexical.is_relative_to(root) for root in self._resolved_roots):
            raise BadInputError(
                f"{text} resolves through a symlink to {real}, which is outside the allowed roots ({roots})"
            )
        raise BadInputError(
            f"{text} is outside the allowed roots ({roots}); start the server with --allow-root DIR to allow a folder"
        )

    def _decode_data_uri(self, uri: str) -> bytes:
        """Decode a base64 image data: URI, refusing oversize ones before decoding them."""
        header, sep, payload = uri.partition(",")
        if not sep:
            raise BadInputError("data URI has no ',' before its data")
        media = header[len("data:") :].split(";")
        if "base64" not in media[1:]:
            raise BadInputError("data URI must be base64-encoded (data:image/png;base64,...)")
        if media[0] and not media[0].startswith("image/"):
            raise BadInputError(f"data URI has media type {media[0]!r}, not an image type")
        approx = len(payload) * 3 // 4
        if approx > self.max_bytes:
            raise BadInputError(
                f"data URI is too large: about {approx} bytes decoded, the limit is {self.max_bytes} bytes; "
                "pass a file path instead"
            )
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadInputError(f"data URI is not valid base64: {exc}") from exc

    async def _fetch(self, url: str) -> bytes:
        """Download an image when URLs are allowed: public addresses only, stopping at the size limit."""
        if not self.allow_urls:
            raise BadInputError(
                "fetching URLs is off on this server; pass a file path, a data: URI or a thinkedit:// URI "
                "(or start the server with --allow-urls)"
            )
        return await fetch_image_bytes(url, self.max_bytes, self.url_policy)


def open_beneath(real: Path, root: Path, label: str) -> int:
    """Return a read-only descriptor of ``real`` (inside ``root``), opened without following any symlink.

    The resolved path has no symlinks, so meeting one on the walk from the root means someone swapped
    it in since the check; the bytes are then read from this descriptor, never by opening the name again.
    """
    parts = real.relative_to(root).parts
    if not parts:
        raise BadInputError(f"not a file: {label}")
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | os.O_CLOEXEC)
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            flags = os.O_RDONLY | _NOFOLLOW | os.O_CLOEXEC | (_NONBLOCK if last else _DIRECTORY)
            try:
                child = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise BadInputError(
                        f"{label} changed while it was being opened (a symlink appeared on its path); refused"
                    ) from None
                if exc.errno == errno.ENOENT:
                    raise BadInputError(f"image not found: {label}") from None
                raise BadInputError(f"cannot read {label}: {exc.strerror or exc}") from None
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise
