"""The artifact store's files are whole and durable: torn files are mended, images are fsynced, lost writes are said."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from PIL import Image

from thinkedit.agent.checkpoint import artifacts_first
from thinkedit.tools.artifact_cache import DECODED, WRITES
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.store import ArtifactStore, to_png_bytes
from tests.test_write_behind import Auditor, gated_writer, scripted_runner, settings

TORN = {
    "empty": lambda data: b"",  # an OS crash before the data reached the disk
    "cut short": lambda data: data[: len(data) // 2],  # a copy stopped half way
    "zeros": lambda data: bytes(len(data)),  # blocks allocated, never written
}


@pytest.fixture
def photo() -> Image.Image:
    return Image.effect_noise((96, 64), 60).convert("RGB")


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return ArtifactStore(tmp_path / "artifacts", cache_dir=tmp_path / "cache")
    return ArtifactStore(f"memory://{tmp_path.name}/artifacts", cache_dir=tmp_path / "cache")


def tear(store: ArtifactStore, digest: str, torn: bytes) -> None:
    """Put ``torn`` at ``digest``'s address, as a crash or another tool would leave it, and forget the pixels."""
    key = store._key(digest)
    if store.local:
        Path(key).write_bytes(torn)
    else:
        store._fs.pipe_file(key, torn)
    DECODED.forget(key)


@pytest.mark.parametrize("how", list(TORN))
def test_storing_an_image_again_mends_a_torn_file_at_its_address(store: ArtifactStore, photo: Image.Image,
                                                                 how: str) -> None:
    ref = store.put(photo)
    ArtifactStore.flush([ref])
    whole = store.read_bytes(ref)
    tear(store, ref.sha256, TORN[how](whole))
    assert store.put(photo) == ref
    ArtifactStore.flush([ref])
    DECODED.forget(store._key(ref.sha256))
    assert store.read_bytes(ref) == whole
    assert store.get(ref).tobytes() == photo.tobytes()
    assert store.lookup(ref.sha256) == ref


@pytest.mark.parametrize("how", list(TORN))
def test_reading_a_torn_file_says_it_is_damaged(store: ArtifactStore, photo: Image.Image, how: str) -> None:
    ref = store.put(photo)
    ArtifactStore.flush([ref])
    tear(store, ref.sha256, TORN[how](store.read_bytes(ref)))
    damaged = rf"image {ref.sha256[:12]} in the artifact store .* is damaged"
    for read in (store.get, store.read_bytes, store.local_path, lambda r: store.lookup(r.sha256)):
        with pytest.raises(BadInputError, match=damaged):
            read(ref)


def test_a_torn_copy_in_the_local_cache_is_copied_again(tmp_path: Path, photo: Image.Image) -> None:
    store = ArtifactStore(f"memory://{tmp_path.name}/artifacts", cache_dir=tmp_path / "cache")
    ref = store.put(photo)
    ArtifactStore.flush([ref])
    copy = store.local_path(ref)
    copy.write_bytes(copy.read_bytes()[:100])  # the process copying it was killed
    assert store.local_path(ref) == copy
    assert Image.open(copy).convert("RGB").tobytes() == photo.tobytes()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names an fsynced descriptor through /proc")
def test_an_image_and_its_directories_are_fsynced_on_the_writer_before_flush_returns(
        tmp_path: Path, photo: Image.Image, monkeypatch) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    synced: list[tuple[str, str, bool]] = []
    fsync = os.fsync
    target: list[Path] = []

    def spy(fd: int) -> None:
        # What was synced, by which thread, and whether the image's address held its file by then.
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), threading.current_thread().name, target[0].exists()))
        fsync(fd)

    ref_digest = ArtifactStore(tmp_path / "probe").put(photo).sha256  # the address, before the spy is set
    ArtifactStore.flush()
    target.append(Path(store._key(ref_digest)))
    monkeypatch.setattr(os, "fsync", spy)
    ref = store.put(photo)
    ArtifactStore.flush([ref])
    monkeypatch.undo()
    image, directory, root = target[0], target[0].parent, target[0].parent.parent
    (first, _, there_yet), *entries = synced
    assert Path(first).parent == directory and Path(first).name.startswith(f".{image.name}.") and not there_yet
    # Then, once it is there, its directory's entry and the root's entry for the new <aa> directory.
    assert [(Path(path), there) for path, _, there in entries] == [(directory, True), (root, True)]
    assert all(thread.startswith("thinkedit-artifacts") for _, thread, _ in synced)  # off the run's path
    assert image.read_bytes() == to_png_bytes(photo, compress_level=1)


def mend(store: ArtifactStore, blocked: Path, photo: Image.Image) -> None:
    """Clear the obstacle and store the image, so that no later flush hears of the failure."""
    blocked.rmdir()
    ArtifactStore.flush([store.put(photo)])
    ArtifactStore.flush()


def test_a_failed_write_is_said_naming_the_image_and_its_pixels_are_not_handed_out(
        tmp_path: Path, photo: Image.Image) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    gate = gated_writer()
    ref = store.put(photo)
    blocked = Path(store._key(ref.sha256))
    blocked.mkdir(parents=True)  # the address is taken by a directory: the rename onto it fails
    assert store.cached(ref) is not None  # until its write has run, the pixels are served from memory
    gate.set()
    said = rf"cannot store image {ref.sha256[:12]} in the artifact store {store.url}: IsADirectoryError"
    with pytest.raises(OSError, match=said):
        ArtifactStore.flush([ref])
    assert store.cached(ref) is None
    with pytest.raises(OSError, match=said):
        store.get(ref)
    assert not list(blocked.parent.glob("*.part"))
    mend(store, blocked, photo)
    assert store.get(ref).tobytes() == photo.tobytes()


@pytest.mark.parametrize("wrapped", [True, False], ids=["ours-async", "foreign-sync"])
async def test_a_run_whose_image_cannot_be_stored_fails_saying_so_and_no_save_names_it(
        tmp_path: Path, photo: Image.Image, wrapped: bool) -> None:
    saver = artifacts_first(Auditor)() if wrapped else Auditor()
    runner = scripted_runner(tmp_path, saver)
    gate = gated_writer()
    record = runner.prepare(photo, "make it red", settings(tmp_path))
    blocked = Path(runner.store._key(record.source.sha256))
    blocked.mkdir(parents=True)
    gate.set()
    said = f"cannot store image {record.source.sha256[:12]} in the artifact store"
    with pytest.raises(OSError, match=said):
        await runner.start(record)
    saved = runner.registry.load(record.run_id)
    assert saved.status == "error" and said in saved.error
    assert record.source.uri not in {uri for uri, _ in saver.seen}
    assert runner.store.cached(record.source) is None
    mend(runner.store, blocked, photo)
    assert runner.store.put(photo) == record.source
