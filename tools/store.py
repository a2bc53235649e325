"""Write images as PNG and keep them content-addressed (by their pixels' SHA-256), on disk or at any fsspec URL.

Every PNG thinkedit sends or stores is made by ``to_png_bytes``; at ``FAST_PNG_LEVEL``, by our own
encoder, ``encode_png``: every row filtered "Up" (each byte less the byte above it), deflated with
zlib's RLE strategy. PIL picks each row's filter by trying all five (libpng's heuristic), and at
low zlib levels that choice, not the deflating, takes much of its encoding time. "Up" suits photos
and renders about as well as the adaptive choice, costs one subtraction done by PIL in C, and RLE
deflate is the cheapest zlib strategy that still packs its long runs of small differences. The
output is a plain PNG (signature, IHDR, IDAT chunks, IEND) that any decoder reads; rows are filtered
and deflated in bands, so memory stays a few times one band, not the image.
"""

from __future__ import annotations

import io
import logging
import os
import re
import struct
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops

from thinkedit.tools.artifact_cache import DECODED, WRITES, pixel_digest
from thinkedit.tools.errors import BadInputError, ThinkeditError
from thinkedit.tools.images import load_image
from thinkedit.tools.locations import is_url
from thinkedit.tools.secrets import mask_url, register_secret, url_secrets
from thinkedit.tools.types import ImageRef

#: PIL mode -> (PNG colour type, bytes per pixel), for the 8-bit modes this encoder writes.
COLOUR_TYPES = {"L": (0, 1), "RGB": (2, 3), "RGBA": (6, 4)}
SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: About how many bytes of filtered rows are built and deflated at a time: bands that stay in the
#: CPU's cache encode faster than whole images; the file grows by a few bytes (one zlib stream
#: still, in a few more IDAT frames).
BAND_BYTES = 256 * 1024
_UP = 2  # PNG filter type "Up"

log = logging.getLogger(__name__)


class ArtifactWriteError(ThinkeditError, OSError):
    """Report an image whose PNG could not be stored (a full disk, no permission): it names the image and store."""


def write_whole(path: Path, data: bytes, *, sync: bool = False) -> None:
    """Write ``data`` at ``path`` through a temporary file beside it, so ``path`` is never seen half-written.

    A write that fails (a full disk) removes its temporary file: retries must not fill the disk further.
    ``sync`` makes it durable before returning: the file's data is fsynced before the rename, its directory
    (and a directory made for it) after, so an OS crash leaves the old state or the whole new file.
    """
    made = not path.parent.is_dir()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")  # its own, per writer
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync:
        _sync_directory(path.parent)
        if made:  # the new directory's own entry
            _sync_directory(path.parent.parent)


def _sync_directory(directory: Path) -> None:
    """Make the entries of ``directory`` durable (POSIX; Windows cannot open a directory to fsync it)."""
    if os.name == "nt":  # pragma: no cover
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def can_encode(image: Image.Image) -> bool:
    """Say whether ``encode_png`` writes this image (8-bit L, RGB or RGBA, not empty)."""
    return image.mode in COLOUR_TYPES and image.width > 0 and image.height > 0


def encode_png(image: Image.Image) -> bytes:
    """Return ``image`` as PNG bytes, lossless, every row "Up"-filtered (see the module's docstring)."""
    if not can_encode(image):
        raise ValueError(f"encode_png writes 8-bit L, RGB or RGBA images, not {image.mode} {image.size}")
    colour_type, channels = COLOUR_TYPES[image.mode]
    width, height = image.size
    row_bytes = width * channels
    band = max(1, BAND_BYTES // (row_bytes + 1))
    packer = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    parts = []
    for top in range(0, height, band):
        bottom = min(top + band, height)
        current = image.crop((0, top, width, bottom))
        if top:  # each row's predecessor
            above = image.crop((0, top - 1, width, bottom - 1))
        else:  # the image's first row has none: zeros
            above = Image.new(image.mode, current.size)
            if bottom > 1:
                above.paste(image.crop((0, 0, width, bottom - 1)), (0, 1))
        difference = ImageChops.subtract_modulo(current, above)
        rows = Image.new("L", (row_bytes + 1, bottom - top), _UP)  # the filter byte leads each row
        rows.paste(Image.frombytes("L", (row_bytes, bottom - top), difference.tobytes()), (1, 0))
        parts.append(packer.compress(rows.tobytes()))  # bytes held back by zlib come in a later part
    parts.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    idat = [_chunk(b"IDAT", part) for part in parts if part]  # the zlib stream, split where the bands ended
    return b"".join([SIGNATURE, _chunk(b"IHDR", header), *idat, _chunk(b"IEND", b"")])


def _chunk(kind: bytes, data: bytes) -> bytes:
    """Frame one PNG chunk: length, type, data, CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


#: The last bytes of every whole PNG: its IEND chunk (no data, so always these 12 bytes).
IEND = _chunk(b"IEND", b"")


def is_whole_png(head: bytes, tail: bytes, size: int) -> bool:
    """Say whether a file of ``size`` bytes that starts with ``head`` and ends with ``tail`` is a complete PNG.

    Cheap, from two short reads: an empty file, one cut short (a crash before its data reached disk, a copy
    stopped half way) or one filled with zeros lacks the signature or the closing IEND chunk.
    """
    return size >= len(SIGNATURE) + len(IEND) and head.startswith(SIGNATURE) and tail.endswith(IEND)


def file_is_whole(path: Path) -> bool | None:
    """Say whether the local file ``path`` is a whole PNG (``is_whole_png``): None when there is no such file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(SIGNATURE))
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - len(IEND)))
            return is_whole_png(head, fh.read(), size)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


#: The level for PNGs that cross a local link or go to disk: lossless like any level, and written by
#: ``encode_png`` for 8-bit L/RGB/RGBA. It encodes faster than PIL's default level for files only a
#: little larger, so every PNG thinkedit sends or stores uses it: the time a higher level costs is
#: made back only on a slow link.
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


#: zlib level of stored PNGs (the digest is of the pixels, so the level never changes an address).
PNG_LEVEL = FAST_PNG_LEVEL
#: What an image's address is: its SHA-256, in lower-case hex (anything else would name another file).
_DIGEST = re.compile(r"[0-9a-f]{64}")

#: A URL with a scheme (``memory://``, ``file://``, ``s3://``): the store goes through fsspec.
def open_filesystem(url: str) -> tuple[Any, str]:
    """Return the fsspec filesystem and root path of ``url``, or raise ``BadInputError`` naming the problem.

    A password in ``url`` (FTP, SFTP and SMB stores take one there) is registered as a secret first, so
    every error and log line that shows the URL masks it.
    """
    register_secret(*url_secrets(url))
    try:
        import fsspec
    except ModuleNotFoundError as exc:  # pragma: no cover - fsspec is a core dependency
        raise BadInputError(f"artifact store {url!r} needs fsspec: pip install fsspec") from exc
    scheme = url.split("://", 1)[0].lower()
    if scheme not in fsspec.available_protocols():
        raise BadInputError(f"artifact store {url!r}: unknown scheme {scheme!r} (try file://, memory://, s3://)")
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise BadInputError(f"artifact store {url!r} cannot be opened: {exc}") from exc
    return fs, root.rstrip("/")


class ArtifactStore:
    """Keep images as ``<root>/<aa>/<sha256>.png``; identical images are stored once.

    ``root`` is a local directory or an fsspec URL (``file://``, ``memory://``, ``s3://``...), so
    processes on several machines can share one store. ``ImageRef.uri`` is the object's local
    path or URL; ``local_path`` gives callers that need a file one (cached for remote stores).

    ``put`` is write-behind: it returns the reference at once and the PNG is written by the
    process's background writer (``thinkedit.tools.artifact_cache``); every read of the stored
    bytes waits for its write, and ``flush`` waits for all (checkpointers call it before saving).
    """

    def __init__(self, root: str | Path, cache_dir: str | Path | None = None) -> None:
        self.url = str(root)
        self._fs: Any = None
        if is_url(root):
            self._fs, self._root = open_filesystem(str(root))
            self._shown = mask_url(self.url, known=False)  # what ImageRefs (stored) and messages show
            self._fs.makedirs(self._root, exist_ok=True)
            protocol = self._fs.protocol if isinstance(self._fs.protocol, str) else self._fs.protocol[0]
            self.local = protocol in ("file", "local")
            self.root: Path | None = Path(self._root) if self.local else None
        else:
            self.root = Path(root).expanduser().resolve()
            self.root.mkdir(parents=True, exist_ok=True)
            self.url, self._root, self.local = str(self.root), str(self.root), True
            self._shown = self.url
        self._cache = Path(cache_dir).expanduser() if cache_dir else None

    def _key(self, digest: str) -> str:
        self._check_digest(digest)  # a digest read from a record or a checkpoint names a file: never a path
        return f"{self._root}/{digest[:2]}/{digest}.png"

    def _uri(self, digest: str) -> str:
        if self._fs is None or self.local:
            return self._key(digest)
        return f"{self._shown.rstrip('/')}/{digest[:2]}/{digest}.png"  # as the caller spelled it, less its password

    def _check_digest(self, digest: str) -> None:
        if not _DIGEST.fullmatch(digest):
            raise BadInputError(f"{digest[:80]!r} is not a SHA-256 hex digest")

    def _exists(self, digest: str) -> bool:
        return self._fs.isfile(self._key(digest)) if self._fs is not None else Path(self._key(digest)).is_file()

    def _whole(self, digest: str) -> bool | None:
        """Say whether the file at ``digest``'s address is a whole PNG: None when there is none, False when torn."""
        key = self._key(digest)
        if self._fs is None or self.local:
            return file_is_whole(Path(key))
        if not self._fs.isfile(key):
            return None
        size = int(self._fs.info(key).get("size") or 0)
        if size < len(SIGNATURE) + len(IEND):
            return False
        head = self._fs.cat_file(key, start=0, end=len(SIGNATURE))
        return is_whole_png(head, self._fs.cat_file(key, start=size - len(IEND), end=size), size)

    def _missing(self, digest: str) -> BadInputError:
        return BadInputError(f"image {digest[:12]} is not in the artifact store {self._shown}")

    def _damaged(self, digest: str) -> BadInputError:
        return BadInputError(
            f"image {digest[:12]} in the artifact store {self._shown} is damaged: its PNG file is empty or cut short "
            "(storing the same image again mends it)"
        )

    def _check_whole(self, digest: str) -> None:
        """Raise ``BadInputError`` unless a whole PNG is stored at ``digest``'s address."""
        whole = self._whole(digest)
        if whole is None:
            raise self._missing(digest)
        if not whole:
            raise self._damaged(digest)

    def put(self, image: Image.Image) -> ImageRef:
        """Return ``image``'s reference now and store its PNG behind (``flush`` or a reader waits for it)."""
        rgb = image.convert("RGB") if image.mode != "RGB" else image.copy()
        digest = pixel_digest(rgb)
        key = self._key(digest)
        DECODED.put(key, rgb)
        WRITES.submit(key, lambda: self._store(digest, rgb), tag=digest)
        return ImageRef(sha256=digest, uri=self._uri(digest), width=rgb.width, height=rgb.height)

    def _store(self, digest: str, image: Image.Image) -> None:
        """Write the PNG unless a whole one is there; on failure forget the pixels and raise ``ArtifactWriteError``."""
        try:
            whole = self._whole(digest)
            if whole:
                return
            if whole is False:  # empty or torn (an OS crash, a copy cut short): written again, whole
                log.warning("image %s in the artifact store %s was damaged: writing it again", digest[:12], self._shown)
            self._write(digest, to_png_bytes(image, compress_level=PNG_LEVEL))
        except Exception as exc:
            DECODED.forget(self._key(digest))  # not stored: this process must not go on handing out its pixels
            raise ArtifactWriteError(
                f"cannot store image {digest[:12]} in the artifact store {self._shown}: {type(exc).__name__}: {exc}"
            ) from exc

    @staticmethod
    def flush(refs: Iterable[ImageRef] | None = None) -> None:
        """Block until every image this process handed to a store is durable; raise if one of ``refs`` is not.

        Without ``refs``, raise any write that failed and was not mended by a later one.
        """
        WRITES.flush(None if refs is None else {ref.sha256 for ref in refs})

    def _write(self, digest: str, data: bytes) -> None:
        """Write ``data`` at the digest's address without ever exposing a half-written object."""
        key = self._key(digest)
        if self._fs is None or self.local:
            write_whole(Path(key), data, sync=True)  # on the writer thread: durable before a flush returns
            return
        # Object stores write whole objects on close; the address is only ever complete.
        self._fs.makedirs(key.rsplit("/", 1)[0], exist_ok=True)
        self._fs.pipe_file(key, data)

    def delete(self, ref: ImageRef) -> None:
        """Remove a stored image (the caller has made sure that nothing else names it)."""
        key = self._key(ref.sha256)
        WRITES.wait(key)
        DECODED.forget(key)
        if self._fs is None or self.local:
            Path(key).unlink(missing_ok=True)
        elif self._fs.isfile(key):
            self._fs.rm_file(key)

    def cached(self, ref: ImageRef) -> Image.Image | None:
        """Return the image behind ``ref`` if this process holds it decoded (no I/O: safe on an event loop)."""
        return DECODED.get(self._key(ref.sha256))

    def get(self, ref: ImageRef) -> Image.Image:
        """Return the image behind ``ref``: from this process's decoded cache, else decoded from the store."""
        cached = DECODED.get(self._key(ref.sha256))  # keyed by address: another store's image is not ours
        if cached is not None:
            return cached
        image = load_image(self.read_bytes(ref), cache=False)  # DECODED keeps it
        DECODED.put(self._key(ref.sha256), image.copy())
        return image

    def read_bytes(self, ref: ImageRef) -> bytes:
        """Return the stored PNG bytes of ``ref`` (read once, and checked whole on the bytes read)."""
        WRITES.wait(self._key(ref.sha256))
        if self.local:
            try:
                data = Path(self._key(ref.sha256)).read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                raise self._missing(ref.sha256) from None
        else:
            if not self._exists(ref.sha256):
                raise self._missing(ref.sha256)
            data = self._fs.cat_file(self._key(ref.sha256))
        if not is_whole_png(data[: len(SIGNATURE)], data[-len(IEND):], len(data)):
            raise self._damaged(ref.sha256)
        return data

    def lookup(self, digest: str) -> ImageRef:
        """Return the reference of a stored image by its SHA-256, or raise ``BadInputError``."""
        self._check_digest(digest)
        WRITES.wait(self._key(digest))
        self._check_whole(digest)
        if self.local:
            with Image.open(self._key(digest)) as im:
                width, height = im.size
        else:
            with self._fs.open(self._key(digest), "rb") as fh, Image.open(fh) as im:
                width, height = im.size
        return ImageRef(sha256=digest, uri=self._uri(digest), width=width, height=height)

    def path(self, ref: ImageRef) -> Path:
        """Return the local file holding ``ref`` in a local store (remote stores: use ``local_path``)."""
        if not self.local:
            raise BadInputError(f"artifact store {self._shown} is not local: use local_path() for a file")
        WRITES.wait(self._key(ref.sha256))
        self._check_whole(ref.sha256)
        return Path(self._key(ref.sha256))

    def local_path(self, ref: ImageRef) -> Path:
        """Return a local file holding ``ref``: the store's own file, or a copy in the local cache."""
        if self.local:
            return self.path(ref)
        cache = self._cache or Path(tempfile.gettempdir()) / "thinkedit-artifact-cache"
        target = cache / ref.sha256[:2] / f"{ref.sha256}.png"
        if not file_is_whole(target):  # missing, or torn by a crash: copied again
            write_whole(target, self.read_bytes(ref))
        return target
