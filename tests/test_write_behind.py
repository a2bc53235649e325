"""Write-behind artifacts: handed on at once, written behind, durable before any checkpoint names them."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from PIL import Image

from thinkedit.agent.checkpoint import ArtifactsFirst, artifacts_first, serializer
from thinkedit.agent.graph import default_retry
from thinkedit.agent.runs import Runner
from thinkedit.agent.settings import LoopSettings
from thinkedit.agent.state import Round
from thinkedit.tools import artifact_cache
from thinkedit.tools.artifact_cache import WRITES, DecodedCache, pixel_digest
from thinkedit.tools.store import ArtifactStore
from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts


@pytest.fixture
def photo() -> Image.Image:
    return Image.effect_noise((96, 64), 60).convert("RGB")


def settings(data_dir: Path) -> LoopSettings:
    return LoopSettings.model_validate({
        "editor": {"backend": "scripted", "model": "scripted"},
        "thinker": {"backend": "scripted", "model": "scripted"},
        "data_dir": str(data_dir), "max_rounds": 3,
    })


@pytest.mark.parametrize("band_bytes", [artifact_cache.DIGEST_BAND_BYTES, 1000, 1])
@pytest.mark.parametrize("size", [(96, 64), (1, 1), (7, 333), (700, 5)])
def test_the_address_is_the_sha256_of_size_and_rgb_bytes_whatever_the_bands(monkeypatch, size, band_bytes) -> None:
    # The address every store already holds: hashing in bands must feed SHA-256 the very same bytes.
    monkeypatch.setattr(artifact_cache, "DIGEST_BAND_BYTES", band_bytes)  # 1000: bands of a row or a few; 1: one row
    image = Image.effect_noise(size, 60).convert("RGB")
    whole = hashlib.sha256(f"RGB {size[0]}x{size[1]}\n".encode() + image.tobytes()).hexdigest()
    assert pixel_digest(image) == whole
    changed, corner = image.copy(), (size[0] - 1, size[1] - 1)
    changed.putpixel(corner, (1, 2, 3) if image.getpixel(corner) != (1, 2, 3) else (4, 5, 6))
    assert pixel_digest(changed) != whole  # the last pixel of the last band counts


def test_put_hands_the_image_on_before_its_png_is_written(tmp_path: Path, photo: Image.Image) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    gate = threading.Event()
    WRITES.submit("test-gate", lambda: gate.wait(10))  # the writer is busy with something else
    started = time.perf_counter()
    ref = store.put(photo)
    assert time.perf_counter() - started < 5
    assert not Path(ref.uri).exists()  # not written yet...
    assert store.get(ref).tobytes() == photo.tobytes()  # ...yet readable, from memory
    assert ref.sha256 == pixel_digest(photo)
    threading.Timer(0.2, gate.set).start()
    assert store.path(ref).is_file()  # a reader of the file waits for its write
    assert Image.open(ref.uri).convert("RGB").tobytes() == photo.tobytes()


def test_a_failed_write_is_raised_by_flush(tmp_path: Path, photo: Image.Image, monkeypatch) -> None:
    def full(self, digest: str, data: bytes) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(ArtifactStore, "_write", full)
    ArtifactStore(tmp_path / "a").put(photo)
    with pytest.raises(OSError, match="No space left"):
        ArtifactStore.flush()
    ArtifactStore.flush()  # reported once


def test_decoded_cache_is_bounded_and_hands_out_copies() -> None:
    small = Image.new("RGB", (10, 10), "red")  # 300 bytes
    cache = DecodedCache(budget=700)
    cache.put("a", small)
    cache.put("b", small.copy())
    assert cache.get("a") is not None  # "a" is now the most recent
    cache.put("c", small.copy())
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    copy = cache.get("a")
    copy.putpixel((0, 0), (0, 0, 0))
    assert cache.get("a").getpixel((0, 0)) == (255, 0, 0)
    cache.put("huge", Image.new("RGB", (100, 100)))  # over the whole budget: not kept
    assert cache.get("huge") is None


def _round_images(value: Any) -> list[str]:
    rounds = value if isinstance(value, list) else []
    return [r.image.uri for r in rounds if isinstance(r, Round)]


class Auditor(InMemorySaver):
    """Record, at each save, whether every image the saved state names is already on disk."""

    def __init__(self) -> None:
        super().__init__(serde=serializer())
        self.seen: list[tuple[str, bool]] = []

    def _audit(self, uris: list[str]) -> None:
        self.seen.extend((uri, Path(uri).is_file()) for uri in uris)

    async def aput(self, config, checkpoint, metadata, new_versions):
        self._audit(_round_images(checkpoint["channel_values"].get("rounds")))
        return await super().aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config, writes, task_id, task_path=""):
        for channel, value in writes:
            if channel == "rounds":
                self._audit(_round_images(value))
        return await super().aput_writes(config, writes, task_id, task_path)


def slow_writes(monkeypatch) -> None:
    """Make each artifact write take a while, so a checkpoint that did not wait would win the race."""
    write = ArtifactStore._write

    def slow(self, digest: str, data: bytes) -> None:
        time.sleep(0.1)
        write(self, digest, data)

    monkeypatch.setattr(ArtifactStore, "_write", slow)


@pytest.mark.parametrize("wrapped", [True, False], ids=["ours-async", "foreign-sync"])
async def test_no_checkpoint_names_an_image_before_it_is_durable(tmp_path: Path, photo, monkeypatch,
                                                                  wrapped: bool) -> None:
    slow_writes(monkeypatch)
    saver = artifacts_first(Auditor)() if wrapped else Auditor()
    assert isinstance(saver, ArtifactsFirst) == wrapped
    editor = ScriptedEditor()
    runner = Runner(tmp_path, saver, backends=FakeBackends(editor, ScriptedThinker(verdicts((3, 3, "a"), (4, 4, "b"), (5, 5, "c")))),
                    retry=default_retry(max_attempts=1, initial_interval=0.01))
    state = await runner.start(runner.prepare(photo, "make it red", settings(tmp_path)))
    assert state is not None and len(state.rounds) == 3
    assert len({uri for uri, _ in saver.seen}) == 3  # every round's image was named by some save...
    assert all(durable for _, durable in saver.seen), saver.seen  # ...and each was on disk by then


async def test_a_cancelled_settle_leaves_every_save_to_finish() -> None:
    # A run cancelled while its edit node waits for saves must not cancel them: they are shared by
    # every run of the process (cancelling one run once hung the next run's round).
    import asyncio

    from thinkedit.agent.checkpoint import memory_checkpointer

    saver = memory_checkpointer()
    gate = asyncio.Event()

    async def slow_save() -> str:
        await gate.wait()
        return "saved"

    save = asyncio.ensure_future(saver._after_artifacts(slow_save()))
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(saver.settle())
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.set()
    assert await save == "saved"
    await asyncio.wait_for(saver.settle(), 5)
