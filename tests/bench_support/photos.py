"""Fresh photos for benchmarks: each sample brings an image, and a seed, the artifact store has not seen."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image

#: The photo and instruction the loop and MCP benchmarks run on.
IMAGE = Path(__file__).resolve().parents[2] / "examples" / "chelsea.png"
INSTRUCTION = "put a red party hat on the cat"
#: How far apart the samples' seeds are: a round's K candidates take seeds seed … seed + K - 1.
SEED_STRIDE = 1000


class Photos:
    """Fresh copies of a photo, one per sample: a user's run brings images the artifact store has not seen.

    A copy differs from the photo in one pixel and comes with a seed of its own (``seed``), so
    each run pays what a user's run pays: decoding its photo, and hashing, encoding and writing
    every image it stores. Repeating one photo and seed would hide that: the store keeps one copy
    of identical pixels and skips encoding them again, and the intake keeps the photos it has
    decoded. ``check`` fails a run that stored an image an earlier run had stored.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.made = 0
        self.stored: set[str] = set()

    def fresh(self, photo: Path) -> Path:
        """Write a copy of ``photo`` whose first pixel no earlier copy (nor the photo) has; return its path."""
        self.made += 1
        picture = Image.open(photo).convert("RGB")
        _, _, blue = picture.getpixel((0, 0))
        picture.putpixel((0, 0), (self.made % 256, self.made // 256 % 256, (blue + 128) % 256))
        path = self.directory / f"{photo.stem}-{self.made}.png"
        picture.save(path)
        return path

    def seed(self, base: int = 0) -> int:
        """Return the seed that goes with the newest copy: ``base`` moved on by ``SEED_STRIDE`` a copy.

        The pixel alone does not survive an editor that downscales its input; the seed makes its
        edits new.
        """
        return base + SEED_STRIDE * self.made

    @staticmethod
    def digests(state: Any) -> list[str]:
        """Return the digests of every image a run (its final ``RunState``) stored: source, rounds, candidates."""
        rounds = state.rounds
        images = (state.source, *(r.image for r in rounds), *(c.image for r in rounds for c in r.candidates))
        return [ref.sha256 for ref in images]

    def check(self, state: Any) -> None:
        """Fail unless every image the run (its final ``RunState``) stored is new to the store; remember them."""
        self.check_digests(self.digests(state))

    def check_digests(self, digests: Iterable[str]) -> None:
        """Fail unless none of these image digests was stored by an earlier run; remember them."""
        new = set(digests)
        assert not new & self.stored, "a run stored an image an earlier run had: the sample would skip its encoding"
        self.stored |= new
