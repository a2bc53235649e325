"""Per-process write-behind and decoded-image cache: keep PNG encoding and decoding off a run's critical path.

An image handed to the artifact store is hashed (over its pixels) and handed on in memory at once;
its PNG is encoded and written by one background thread. Readers of the stored bytes wait for that
one write; checkpointers wait for every pending write (``flush``) before they record a reference,
so a checkpoint never names an image that is not yet durable. Run records are written by the same
thread, queued after the images they name, so a record on disk never names a missing image either.
Decoded images stay in a bounded LRU cache by address (store root + content hash), so a round does
not decode the image it has just made.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor

from PIL import Image

log = logging.getLogger(__name__)

#: How many bytes of decoded pixels one process keeps (RGB: 3 bytes a pixel).
DECODED_CACHE_BYTES = 128 * 1024 * 1024


#: About how many bytes of pixels ``pixel_digest`` unpacks and hashes at a time (see there).
DIGEST_BAND_BYTES = 256 * 1024


def pixel_digest(image: Image.Image) -> str:
    """Return the SHA-256 of an RGB image's size and pixels: its address, before any encoding.

    The pixels are hashed in bands of rows, the same bytes in the same order as one ``tobytes()``:
    unpacking a whole image into one new buffer costs more than hashing it (fresh pages each
    time), bands that stay in the CPU's cache do not.
    """
    digest = hashlib.sha256(f"RGB {image.width}x{image.height}\n".encode())
    width, height = image.size
    rows = max(1, DIGEST_BAND_BYTES // (3 * width or 1))
    for top in range(0, height, rows):
        digest.update(image.crop((0, top, width, min(top + rows, height))).tobytes())
    return digest.hexdigest()


class WriteBehind:
    """Run artifact (and run record) writes on one background thread; let readers wait for one key and checkpoints for all.

    A write that fails stays failed until a later write of the same key succeeds: every reader of
    that key, and every checkpoint that names it (by its ``tag``: an image's digest), hears of it,
    however many other flushes ran in between; a checkpoint that names only durable data does not.
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[str, Future[None]] = {}
        #: key -> (tag, error) of each key whose newest write failed.
        self._failed: dict[str, tuple[str, BaseException]] = {}
        self._lock = threading.Lock()

    def submit(self, key: str, write: Callable[[], None], *, tag: str | None = None) -> None:
        """Queue ``write`` for ``key`` unless a write of that key is already queued (content-addressed data).

        ``tag`` names the data for ``flush(tags)`` (an image's digest, whatever store it is in);
        it defaults to ``key``.
        """
        self._queue(key, write, tag=tag or key, again=False)

    def queue(self, key: str, write: Callable[[], None]) -> None:
        """Queue ``write`` for ``key`` even if one is queued already (a newer version of mutable data).

        One thread runs the writes in the order they were queued, so this one runs after every
        write queued before it (the images a record names, that record's older versions), and
        ``wait(key)`` waits for the newest.
        """
        self._queue(key, write, tag=key, again=True)

    def _queue(self, key: str, write: Callable[[], None], *, tag: str, again: bool) -> None:
        with self._lock:
            if key in self._pending and not again:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="thinkedit-artifacts")
            future = self._pool.submit(self._run, key, tag, write)
            self._pending[key] = future
        future.add_done_callback(lambda f, key=key: self._done(key, f))

    def _run(self, key: str, tag: str, write: Callable[[], None]) -> None:
        """Run one write; its outcome is recorded before anyone waiting on it wakes."""
        try:
            write()
        except BaseException as error:
            with self._lock:
                self._failed[key] = (tag, error)
            # Said now too: a process that exits without a flush would not hear of it.
            log.error("writing %s behind failed: %s: %s", key, type(error).__name__, error)
            raise
        with self._lock:
            self._failed.pop(key, None)  # written now: an earlier failure of this key is mended

    def _done(self, key: str, future: Future[None]) -> None:
        with self._lock:
            if self._pending.get(key) is future:
                del self._pending[key]

    def wait(self, key: str) -> None:
        """Block until the queued write of ``key`` (if any) is done; raise the error of its newest write."""
        with self._lock:
            future = self._pending.get(key)
        if future is not None:
            future.exception()  # waits; the outcome is recorded by _run
        with self._lock:
            failed = self._failed.get(key)
        if failed is not None:
            raise failed[1]

    def pending(self) -> bool:
        """Say whether any write is queued or running, or a failed one is unmended (a flush has work)."""
        with self._lock:
            return bool(self._pending) or bool(self._failed)

    def failed(self) -> bool:
        """Say whether some write failed and no later write of its key has mended it."""
        with self._lock:
            return bool(self._failed)

    def drain(self) -> None:
        """Block until every write queued so far is done (raise nothing: see ``raise_failed``)."""
        with self._lock:
            futures = list(self._pending.values())
        for future in futures:
            future.exception()  # waits; the outcome is recorded by _run

    def raise_failed(self, tags: Collection[str] | None = None) -> None:
        """Raise the error of an unmended failed write among ``tags`` (None: among all)."""
        with self._lock:
            failed = [error for tag, error in self._failed.values() if tags is None or tag in tags]
        if failed:
            raise failed[0]

    def flush(self, tags: Collection[str] | None = None) -> None:
        """Block until every queued write is done; raise a failed write among ``tags`` (None: among all).

        A caller passes the tags of the data it needs durable, so one run's lost write fails that
        run (each save naming it, until it is written), not every run's next save. Checkpointers
        (``ArtifactsFirst``) call ``drain`` and, only once ``failed`` says a write failed,
        ``raise_failed`` with the images the checkpoint names: finding them costs a walk of the state.
        """
        self.drain()
        self.raise_failed(tags)


class DecodedCache:
    """Keep recently stored or loaded images by address, evicting the least recent past a byte budget."""

    def __init__(self, budget: int = DECODED_CACHE_BYTES) -> None:
        self.budget = budget
        self._images: OrderedDict[str, Image.Image] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def _size(image: Image.Image) -> int:
        return image.width * image.height * len(image.getbands())

    def put(self, key: str, image: Image.Image) -> None:
        """Remember ``image`` (the cache's own copy) under ``key``."""
        size = self._size(image)
        if size > self.budget:
            return
        with self._lock:
            old = self._images.pop(key, None)
            if old is not None:
                self._bytes -= self._size(old)
            self._images[key] = image
            self._bytes += size
            while self._bytes > self.budget:
                _, evicted = self._images.popitem(last=False)
                self._bytes -= self._size(evicted)

    def forget(self, key: str) -> None:
        """Drop the image under ``key`` (its file was deleted: reading it must say so, not hand out its pixels)."""
        with self._lock:
            old = self._images.pop(key, None)
            if old is not None:
                self._bytes -= self._size(old)

    def get(self, key: str) -> Image.Image | None:
        """Return a copy of the cached image (callers may change it), or None."""
        with self._lock:
            image = self._images.get(key)
            if image is None:
                return None
            self._images.move_to_end(key)
        return image.copy()


#: One writer and one cache per process: every ArtifactStore of this process shares them. The writer's
#: thread is joined at interpreter exit, so a process that exits normally leaves every artifact on disk.
WRITES = WriteBehind()
DECODED = DecodedCache()
