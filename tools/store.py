"""A content-addressed artifact store: PNGs on disk, addressed by their SHA-256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from PIL import Image

from tools.errors import BadInputError
from tools.images import load_image, to_png_bytes
from tools.types import ImageRef


class ArtifactStore:
    """Keep images as ``<root>/<aa>/<sha256>.png``; identical images are stored once."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, digest: str) -> Path:
        return self.root / digest[:2] / f"{digest}.png"

    def put(self, image: Image.Image) -> ImageRef:
        """Store ``image`` as PNG and return its reference."""
        data = to_png_bytes(image.convert("RGB"))
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a crash never leaves a half-written file at the address.
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        return ImageRef(sha256=digest, uri=str(path), width=image.width, height=image.height)

    def get(self, ref: ImageRef) -> Image.Image:
        """Load the image behind ``ref``."""
        return load_image(self.path(ref))

    def read_bytes(self, ref: ImageRef) -> bytes:
        """Return the stored PNG bytes of ``ref``."""
        return self.path(ref).read_bytes()

    def lookup(self, digest: str) -> ImageRef:
        """Return the reference of a stored image by its SHA-256, or raise ``BadInputError``."""
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise BadInputError(f"{digest!r} is not a SHA-256 hex digest")
        path = self._path(digest)
        if not path.is_file():
            raise BadInputError(f"image {digest[:12]} is not in the artifact store {self.root}")
        with Image.open(path) as im:
            width, height = im.size
        return ImageRef(sha256=digest, uri=str(path), width=width, height=height)

    def path(self, ref: ImageRef) -> Path:
        """Return the local file holding ``ref``, checking it belongs to this store."""
        path = self._path(ref.sha256)
        if not path.is_file():
            raise BadInputError(f"image {ref.sha256[:12]} is not in the artifact store {self.root}")
        return path
