"""Write-behind artifacts: handed on at once, written behind, durable before any checkpoint names them."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from PIL import Image

from thinkedit.agent.checkpoint import ArtifactsFirst, artifacts_first, memory_checkpointer, serializer
from thinkedit.agent.graph import default_retry
from thinkedit.agent.runs import RunRecord, RunRegistry, Runner
from thinkedit.agent.settings import LoopSettings
from thinkedit.agent.state import Round
from thinkedit.tools import artifact_cache
from thinkedit.tools.artifact_cache import WRITES, DecodedCache, pixel_digest
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.store import ArtifactStore
from thinkedit.tools.types import ImageRef
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
    gate, busy_done = threading.Event(), threading.Event()
    WRITES.submit("test-gate", lambda: (gate.wait(10), busy_done.set()))  # the writer is busy with something else
    ref = store.put(photo)
    assert not busy_done.is_set()  # put returned while the writer was still busy: it did not wait for it
    assert not Path(ref.uri).exists()  # not written yet...
    assert store.get(ref).tobytes() == photo.tobytes()  # ...yet readable, from memory
    assert ref.sha256 == pixel_digest(photo)
    threading.Timer(0.2, gate.set).start()
    assert store.path(ref).is_file()  # a reader of the file waits for its write
    assert Image.open(ref.uri).convert("RGB").tobytes() == photo.tobytes()


def lose_writes_of(monkeypatch, image: Image.Image) -> None:
    """Make every write of ``image``'s PNG fail as a full disk would; other images are written."""
    lost_digest, write = pixel_digest(image), ArtifactStore._write

    def full(self, digest: str, data: bytes) -> None:
        if digest == lost_digest:
            raise OSError("No space left on device")
        write(self, digest, data)

    monkeypatch.setattr(ArtifactStore, "_write", full)


def test_a_failed_write_is_raised_to_whoever_names_it_until_it_is_mended(tmp_path: Path, photo: Image.Image,
                                                                        monkeypatch) -> None:
    store = ArtifactStore(tmp_path / "a")
    other = store.put(Image.effect_noise((32, 32), 60).convert("RGB"))
    ArtifactStore.flush([other])
    lose_writes_of(monkeypatch, photo)
    lost = store.put(photo)
    fine = store.put(Image.effect_noise((40, 40), 60).convert("RGB"))
    # A checkpoint that names only durable images is saved, however often another run's write failed.
    ArtifactStore.flush([fine, other])
    ArtifactStore.flush([fine])
    # One that names the lost image fails, each time: another flush did not swallow it.
    for _ in range(2):
        with pytest.raises(OSError, match="No space left"):
            ArtifactStore.flush([fine, lost])
    with pytest.raises(OSError, match="No space left"):
        ArtifactStore.flush()  # nothing named: any unmended failure
    with pytest.raises(OSError, match="No space left"):
        store.path(lost)  # a reader hears why the file is missing
    assert store.cached(lost) is None  # not stored, so no longer handed out from memory either
    with pytest.raises(OSError, match=f"cannot store image {lost.sha256[:12]} in the artifact store"):
        store.get(lost)
    monkeypatch.undo()
    assert store.put(photo) == lost  # the same image handed over again is written: the failure is mended
    ArtifactStore.flush([lost])
    ArtifactStore.flush()
    assert Image.open(store.path(lost)).convert("RGB").tobytes() == photo.tobytes()


def test_a_save_names_every_image_inside_what_it_saves(photo: Image.Image) -> None:
    from langgraph.types import Interrupt

    from thinkedit.agent.checkpoint import named_images
    from thinkedit.agent.state import Candidate

    refs = [ImageRef(sha256=f"{i:064x}", uri=f"/store/{i}.png", width=8, height=8) for i in range(7)]
    value = {
        "final_image": refs[5].model_dump(mode="json"),  # what channels hold: JSON-native data
        "dumped_rounds": [{"index": 2, "image": refs[6].model_dump(mode="json"), "usage": {"edit_calls": 1}}],
        "source": refs[0],
        "rounds": [Round(index=1, instruction="x", seed=0, image=refs[1], verdict=verdicts((3, 3, "a"))[0],
                         candidates=[Candidate(seed=0, image=refs[2])])],
        "pending": [("review", Interrupt(value={"image": refs[3]}))],  # a LangGraph dataclass
        "counts": {"n": 3, "text": "refs[4]", "none": None, "blob": b"x"},
        "set": frozenset({refs[4]}),
    }
    assert sorted(r.sha256 for r in named_images(value)) == sorted(r.sha256 for r in refs)
    assert named_images({"instruction": "make it red", "n": 1}) == []


@pytest.mark.parametrize("wrapped", [True, False], ids=["ours-async", "foreign-sync"])
async def test_one_runs_lost_source_fails_that_run_not_the_next(tmp_path: Path, photo, monkeypatch,
                                                                 wrapped: bool) -> None:
    saver = artifacts_first(Auditor)() if wrapped else Auditor()
    runner = scripted_runner(tmp_path, saver)
    lose_writes_of(monkeypatch, photo)
    lost = runner.prepare(photo, "make it red", settings(tmp_path))
    WRITES.queue("test-probe", lambda: None)
    WRITES.wait("test-probe")  # one writer, in order: its source's write has failed by now
    other = runner.prepare(Image.effect_noise((96, 64), 60).convert("RGB"), "make it blue", settings(tmp_path))
    state = await runner.start(other)  # the first to save after the failure: it names none of it
    assert state is not None and len(state.rounds) == 3
    assert runner.registry.load(other.run_id).status == "done"
    with pytest.raises(OSError, match="No space left"):
        await runner.start(lost)  # its first save names its source
    assert runner.registry.load(lost.run_id).status == "error"
    assert lost.source.uri not in {uri for uri, _ in saver.seen}  # no save named the missing source
    assert all(durable for _, durable in saver.seen), saver.seen
    monkeypatch.undo()
    runner.store.put(photo)  # mended, so that no later test hears of it
    ArtifactStore.flush()


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


def _named_images(channel: str, value: Any) -> list[str]:
    """Return the local files a checkpoint channel's value names: the source, the rounds' images."""
    if channel == "source":
        return [ImageRef.model_validate(value).uri] if value else []
    if channel != "rounds":
        return []
    rounds = value if isinstance(value, list) else []
    return [Round.model_validate(r).image.uri for r in rounds]


class Auditor(InMemorySaver):
    """Record, at each save, whether every image the saved state names is already on disk."""

    def __init__(self) -> None:
        super().__init__(serde=serializer())
        self.seen: list[tuple[str, bool]] = []

    def _audit(self, uris: list[str]) -> None:
        self.seen.extend((uri, Path(uri).is_file()) for uri in uris)

    async def aput(self, config, checkpoint, metadata, new_versions):
        for channel, value in checkpoint["channel_values"].items():
            self._audit(_named_images(channel, value))
        return await super().aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config, writes, task_id, task_path=""):
        for channel, value in writes:
            self._audit(_named_images(channel, value))
        return await super().aput_writes(config, writes, task_id, task_path)


def slow_writes(monkeypatch) -> None:
    """Make each artifact write take a while, so a checkpoint that did not wait would win the race."""
    write = ArtifactStore._write

    def slow(self, digest: str, data: bytes) -> None:
        time.sleep(0.1)
        write(self, digest, data)

    monkeypatch.setattr(ArtifactStore, "_write", slow)


def scripted_runner(tmp_path: Path, saver: Any = None) -> Runner:
    """Return a runner on scripted engines (three verdicts) and ``saver`` (default: our in-memory one)."""
    thinker = ScriptedThinker(verdicts((3, 3, "a"), (4, 4, "b"), (5, 5, "c")))
    return Runner(tmp_path, saver if saver is not None else memory_checkpointer(),
                  backends=FakeBackends(ScriptedEditor(), thinker), retry=default_retry(max_attempts=1, initial_interval=0.01))


@pytest.mark.parametrize("wrapped", [True, False], ids=["ours-async", "foreign-sync"])
async def test_no_checkpoint_names_an_image_before_it_is_durable(tmp_path: Path, photo, monkeypatch,
                                                                  wrapped: bool) -> None:
    slow_writes(monkeypatch)
    saver = artifacts_first(Auditor)() if wrapped else Auditor()
    assert isinstance(saver, ArtifactsFirst) == wrapped
    runner = scripted_runner(tmp_path, saver)
    state = await runner.start(runner.prepare(photo, "make it red", settings(tmp_path)))
    assert state is not None and len(state.rounds) == 3
    assert len({uri for uri, _ in saver.seen}) == 4  # the source and every round's image were named by some save...
    assert all(durable for _, durable in saver.seen), saver.seen  # ...and each was on disk by then


def gated_writer() -> threading.Event:
    """Keep the writer thread busy until the returned event is set."""
    gate = threading.Event()
    WRITES.submit(f"test-gate-{id(gate)}", lambda: gate.wait(60))  # a safety net: tests set it
    return gate


def test_prepare_hands_the_run_on_before_its_source_and_record_are_written(tmp_path: Path, photo, monkeypatch) -> None:
    runner = scripted_runner(tmp_path)
    order: list[tuple[str, bool]] = []
    write = RunRegistry._write

    def audited(self, key: str, text: str) -> None:
        order.append((key, all(Path(ref["uri"]).is_file() for ref in [json.loads(text)["source"]])))
        write(self, key, text)

    monkeypatch.setattr(RunRegistry, "_write", audited)
    gate = gated_writer()
    try:
        record = runner.prepare(photo, "make it red", settings(tmp_path))
        on_disk = tmp_path / "runs" / f"{record.run_id}.json"
        # Nothing is written yet: the writer is busy. The run is known here all the same.
        assert not Path(record.source.uri).exists() and not on_disk.exists()
        assert runner.registry.load(record.run_id).source == record.source
        assert [r.run_id for r in runner.registry.list()] == [record.run_id]
        # However the same folder is named.
        monkeypatch.chdir(tmp_path)
        assert RunRegistry("runs").load(record.run_id).run_id == record.run_id
        assert [r.run_id for r in RunRegistry(f"{tmp_path}/./runs/").list()] == [record.run_id]
    finally:
        gate.set()
    runner.registry.flush(record.run_id)
    assert on_disk.is_file() and Path(record.source.uri).is_file()
    assert order == [(str(on_disk), True)]  # the record went to disk after the image it names
    assert RunRecord.model_validate_json(on_disk.read_text()).source == record.source


async def test_the_first_edit_does_not_wait_for_the_source_png(tmp_path: Path, photo) -> None:
    import asyncio

    runner = scripted_runner(tmp_path)
    events: list[dict[str, Any]] = []
    edited = asyncio.Event()

    def on_event(event: dict[str, Any]) -> None:
        events.append(event)
        if event["event"] == "image_ready":
            edited.set()

    gate = gated_writer()
    try:
        record = runner.prepare(photo, "make it red", settings(tmp_path))
        run = asyncio.ensure_future(runner.start(record, on_event=on_event))
        await asyncio.wait_for(edited.wait(), 10)  # round 1 was edited while the source's PNG is still queued
        assert not Path(record.source.uri).exists()
        await asyncio.sleep(0.3)  # round 1 is critiqued, but round 2 waits until round 1 is on disk
        assert [e["round"] for e in events if e["event"] == "round_started"] == [1]
    finally:
        gate.set()
    state = await asyncio.wait_for(run, 30)
    assert state is not None and len(state.rounds) == 3
    assert (tmp_path / "runs" / f"{record.run_id}.json").is_file()  # a finished run's record is on disk
    assert runner.registry.load(record.run_id).status == "done"


def test_a_record_that_cannot_be_written_is_said_and_raised(tmp_path: Path, photo, monkeypatch, caplog) -> None:
    runner = scripted_runner(tmp_path)
    record = runner.prepare(photo, "make it red", settings(tmp_path))
    runner.registry.flush(record.run_id)

    def full(path: Path, data: bytes) -> None:
        raise OSError("No space left on device")

    from thinkedit.agent import runs

    monkeypatch.setattr(runs, "write_whole", full)  # what the registry writes a record with
    record.status = "error"
    with caplog.at_level(logging.ERROR, logger="thinkedit.tools.artifact_cache"):
        runner.registry.save(record)
        with pytest.raises(OSError, match="No space left"):
            runner.registry.flush(record.run_id)
    assert f"{record.run_id}.json" in caplog.text and "No space left" in caplog.text
    with pytest.raises(OSError, match="No space left"):  # and again, long after the write ended
        runner.registry.flush(record.run_id)
    ArtifactStore.flush([record.source])  # a checkpoint that names only images is not held up by it
    monkeypatch.undo()
    assert runner.registry.load(record.run_id).status == "running"  # what the disk holds, not the lost save
    runner.registry.save(record)  # a later save that is written mends it
    runner.registry.flush(record.run_id)
    ArtifactStore.flush()


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

    save = asyncio.ensure_future(saver._after_artifacts(slow_save(), None))
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(saver.settle())
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.set()
    assert await save == "saved"
    await asyncio.wait_for(saver.settle(), 5)


def test_a_digest_is_an_address_never_a_path(tmp_path: Path, photo: Image.Image) -> None:
    """A record is JSON in a folder that may be shared: its image digests must not lead out of the store."""
    store = ArtifactStore(tmp_path / "artifacts")
    victim = tmp_path / "victim.png"
    photo.save(victim)
    forged = ImageRef(sha256="../" * 8 + str(tmp_path / "victim")[1:], uri="x", width=8, height=8)
    for reach in (store.read_bytes, store.delete, store.get, store.local_path):
        with pytest.raises(BadInputError, match="is not a SHA-256 hex digest"):
            reach(forged)
    assert victim.is_file()


def test_two_processes_saving_one_record_never_leave_it_half_written(tmp_path: Path, photo: Image.Image) -> None:
    """Each save writes a temporary file of its own, then renames it over the record."""
    import subprocess
    import sys

    from thinkedit.agent.settings import resolve_settings

    registry = RunRegistry(tmp_path / "runs")
    record = RunRecord(run_id="r1", instruction="x", source=ArtifactStore(tmp_path / "a").put(photo),
                       settings=resolve_settings("tiny", data_dir=str(tmp_path)))
    registry.save(record)
    registry.flush("r1")
    writer = (
        "import sys\nfrom thinkedit.agent.runs import RunRegistry\n"
        "registry = RunRegistry(sys.argv[1])\nrecord = registry.load('r1')\n"
        "for _ in range(400):\n    registry._write(registry._key('r1'), record.model_dump_json(indent=2))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(tmp_path / "runs")], stderr=subprocess.PIPE)
             for _ in range(2)]
    damaged = 0
    while any(p.poll() is None for p in procs):
        try:
            json.loads((tmp_path / "runs" / "r1.json").read_text())
        except ValueError:
            damaged += 1
    errors = [p.stderr.read().decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert damaged == 0 and not list((tmp_path / "runs").glob("*.part"))


def test_a_deleted_image_is_not_handed_out_from_the_cache(tmp_path: Path, photo: Image.Image) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    ref = store.put(photo)
    ArtifactStore.flush([ref])
    assert store.cached(ref) is not None
    store.delete(ref)
    assert store.cached(ref) is None
    with pytest.raises(BadInputError, match="not in the artifact store"):
        store.get(ref)


def test_a_write_cut_short_leaves_no_partial_file(tmp_path: Path, photo: Image.Image) -> None:
    """A full disk: a failed write removes its temporary file, so retries do not fill the disk further."""
    import signal
    import subprocess
    import sys

    script = f"""
import resource, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from PIL import Image
from thinkedit.tools.store import ArtifactStore
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # a disk with room for 4 KiB more per file
store = ArtifactStore({str(tmp_path / "artifacts")!r})
ref = store.put(Image.effect_noise((256, 256), 80).convert("RGB"))  # far more than 4 KiB as PNG
try:
    ArtifactStore.flush([ref])
except OSError as exc:
    print("refused:", exc)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: signal.signal(signal.SIGXFSZ, signal.SIG_IGN))
    assert "refused:" in done.stdout, done.stdout + done.stderr[-2000:]
    assert not list((tmp_path / "artifacts").rglob("*.part")), list((tmp_path / "artifacts").rglob("*"))
