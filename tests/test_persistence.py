"""Storage chosen by URL: checkpointer URLs, fsspec artifact stores and shared run records."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from PIL import Image

from thinkedit.agent.checkpoint import default_checkpoint_url, open_checkpointer, parse_checkpoint_url
from thinkedit.agent.graph import default_retry
from thinkedit.agent.runs import RunRecord, Runner, RunRegistry
from thinkedit.agent.viewer import write_outputs
from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts
from tests.test_graph import make_settings
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.secrets import mask_secrets
from thinkedit.tools.store import ArtifactStore
from thinkedit.tools.types import ImageRef


def memory_url() -> str:
    """Return a fresh in-process fsspec location (the memory filesystem is shared per process)."""
    return f"memory://thinkedit-test-{uuid.uuid4().hex[:8]}"


# -- checkpointer URLs ------------------------------------------------------------------------------


def test_sqlite_url_names_a_file(tmp_path: Path) -> None:
    assert parse_checkpoint_url(f"sqlite://{tmp_path}/c.sqlite") == ("sqlite", f"{tmp_path}/c.sqlite")
    url = default_checkpoint_url(tmp_path)
    assert url == f"sqlite://{tmp_path.resolve()}/checkpoints.sqlite"
    assert parse_checkpoint_url(url)[1] == str(tmp_path.resolve() / "checkpoints.sqlite")


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgres_urls_become_libpq_dsns(scheme: str) -> None:
    kind, dsn = parse_checkpoint_url(f"{scheme}://me:pw@127.0.0.1:5433/runs")
    assert (kind, dsn) == ("postgres", "postgresql://me:pw@127.0.0.1:5433/runs")


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("mysql://u@h/db", "unsupported scheme 'mysql'"),
        ("/just/a/path.sqlite", "unsupported scheme '(none)'"),
        ("sqlite://host/file", "expected sqlite:///path"),
        ("sqlite:///", "expected sqlite:///path"),
        ("postgresql://127.0.0.1:5432", "expected postgresql://user:password@host:port/database"),
    ],
)
def test_bad_checkpoint_urls_name_the_problem(url: str, names: str) -> None:
    with pytest.raises(BadInputError, match="checkpointer URL") as err:
        parse_checkpoint_url(url)
    assert names in str(err.value)


@pytest.mark.parametrize(
    "url",
    [
        "host=127.0.0.1 dbname=runs user=me password=hunter2secret",  # libpq's keywords, which psycopg takes
        "postgresql:/me:hunter2secret@127.0.0.1/runs",  # a slash left out
        "postgres//me:hunter2secret@127.0.0.1/runs",
        "postgresql://me:hunter2secret@[::1/runs",  # an unclosed IPv6 host: a clear error, not a bare ValueError
    ],
)
def test_a_password_in_a_checkpoint_value_that_is_not_quite_a_url_is_masked(url: str) -> None:
    with pytest.raises(BadInputError, match="checkpointer URL") as err:
        parse_checkpoint_url(url)
    assert "hunter2secret" not in str(err.value) and "***" in str(err.value)
    assert "hunter2secret" not in mask_secrets(f"later: {url}")  # registered: masked wherever it shows up next


async def test_unreachable_postgres_is_a_clear_error() -> None:
    with pytest.raises(BadInputError, match=r"cannot reach PostgreSQL at postgresql://u:\*\*\*@127.0.0.1:9/db"):
        async with open_checkpointer("postgresql://u:secret@127.0.0.1:9/db?connect_timeout=2"):
            pass


async def test_sqlite_url_opens_a_checkpointer(tmp_path: Path) -> None:
    async with open_checkpointer(f"sqlite://{tmp_path}/deep/c.sqlite") as saver:
        assert saver is not None
    assert (tmp_path / "deep" / "c.sqlite").is_file()


# -- artifact stores --------------------------------------------------------------------------------


def test_memory_store_round_trip(photo: Image.Image, tmp_path: Path) -> None:
    url = memory_url()
    store = ArtifactStore(url, cache_dir=tmp_path / "cache")
    ref = store.put(photo)
    assert ref.uri == f"{url}/{ref.sha256[:2]}/{ref.sha256}.png"
    assert store.put(photo) == ref  # content addressed: stored once
    assert store.get(ref).tobytes() == photo.tobytes()
    assert store.lookup(ref.sha256) == ref
    assert store.read_bytes(ref)[:8] == b"\x89PNG\r\n\x1a\n"
    local = store.local_path(ref)
    assert local.parent.parent == tmp_path / "cache" and local.read_bytes() == store.read_bytes(ref)
    with pytest.raises(BadInputError, match="not local: use local_path"):
        store.path(ref)
    # Another store object on the same URL (another process, were the URL s3://) sees the image.
    assert ArtifactStore(url).get(ref).size == photo.size


def test_file_url_store_in_another_directory(photo: Image.Image, tmp_path: Path) -> None:
    shared = tmp_path / "elsewhere" / "store"
    store = ArtifactStore(f"file://{shared}")
    ref = store.put(photo)
    assert store.local and Path(ref.uri) == shared / ref.sha256[:2] / f"{ref.sha256}.png"
    assert store.path(ref) == store.local_path(ref) == Path(ref.uri)
    assert ArtifactStore(shared).lookup(ref.sha256) == ref  # the same files as a plain directory


def test_missing_images_and_bad_urls_name_the_problem(photo: Image.Image) -> None:
    store = ArtifactStore(memory_url())
    ref = ArtifactStore(memory_url()).put(photo)
    with pytest.raises(BadInputError, match=f"image {ref.sha256[:12]} is not in the artifact store memory://"):
        store.get(ref)
    with pytest.raises(BadInputError, match="is not a SHA-256 hex digest"):
        store.lookup("abc")
    with pytest.raises(BadInputError, match="unknown scheme 'nosuch'"):
        ArtifactStore("nosuch://bucket/x")


# -- run records and runs on shared storage ---------------------------------------------------------


def test_registry_on_fsspec(photo: Image.Image, tmp_path: Path) -> None:
    url = memory_url()
    store = ArtifactStore(url)
    registry = RunRegistry.for_data(tmp_path / "one", url)
    record = RunRecord(run_id="r1", instruction="x", source=store.put(photo), settings=make_settings(tmp_path))
    registry.save(record)
    other = RunRegistry.for_data(tmp_path / "two", url)
    assert other.load("r1").source == record.source
    assert [r.run_id for r in other.list()] == ["r1"]
    with pytest.raises(BadInputError, match="unknown run id 'nope'"):
        other.load("nope")
    assert RunRegistry.for_data(tmp_path / "two").list() == []  # the data dir's own registry is separate


def test_a_damaged_record_spoils_only_its_own_run(photo: Image.Image, tmp_path: Path) -> None:
    registry = RunRegistry.for_data(tmp_path)
    store = ArtifactStore((tmp_path / "artifacts").as_uri())
    registry.save(RunRecord(run_id="good", instruction="x", source=store.put(photo), settings=make_settings(tmp_path)))
    registry.flush("good")
    (tmp_path / "runs" / "latin1.json").write_bytes(b'{"run_id": "caf\xe9"}')
    (tmp_path / "runs" / "truncated.json").write_text('{"run_id": "trunc')
    assert [r.run_id for r in registry.list()] == ["good"]
    with pytest.raises(BadInputError, match="latin1.json is damaged: it is not UTF-8"):
        registry.load("latin1")
    with pytest.raises(BadInputError, match="truncated.json is damaged"):
        registry.load("truncated")


async def test_runs_share_a_memory_store_across_data_dirs(photo: Image.Image, tmp_path: Path) -> None:
    url = memory_url()
    thinker = ScriptedThinker(verdicts((3, 4, "add a red hat"), (9, 9, "done")))
    async with Runner.open(
        tmp_path / "a", artifacts=url, backends=FakeBackends(ScriptedEditor(), thinker),
        retry=default_retry(max_attempts=2, initial_interval=0.01),
    ) as runner:
        record = runner.prepare(photo, "add a hat", make_settings(tmp_path / "a"))
        assert record.settings.artifacts_url == url and record.source.uri.startswith(url)
        state = await runner.start(record)
    assert state is not None and state.status == "done" and len(state.rounds) == 2
    assert all(r.image.uri.startswith(url) for r in state.rounds)
    assert not (tmp_path / "a" / "artifacts").exists()
    # A runner with another data dir and the same URLs finds the run and its images.
    async with Runner.open(
        tmp_path / "b", checkpoints=default_checkpoint_url(tmp_path / "a"), artifacts=url
    ) as other:
        assert (await other.state(record.run_id)) == state
        paths = write_outputs(state, other.store, tmp_path / "out")
    assert Image.open(paths["final"]).size == photo.size


@pytest.mark.slow
def test_two_processes_share_a_file_url_store_and_sqlite_url(tmp_path: Path) -> None:
    from tests.cli import thinkedit
    from tests.conftest import EXAMPLES

    shared = tmp_path / "nfs"
    storage = ["--checkpoints", f"sqlite://{shared}/checkpoints.sqlite", "--artifacts", f"file://{shared}/artifacts"]
    done = thinkedit("edit", str(EXAMPLES / "coffee.png"), "make the coffee green", "--max-rounds", "1",
                     "--out", str(tmp_path / "out"), *storage, data_dir=tmp_path / "a")
    assert done.returncode == 0, done.stderr
    run_id = done.stderr.split()[1]
    listing = thinkedit("runs", *storage, data_dir=tmp_path / "b")
    assert any(line.startswith(run_id) and "done" in line for line in listing.stdout.splitlines()), listing
    assert (shared / "artifacts" / "runs" / f"{run_id}.json").is_file()
    assert not (tmp_path / "a" / "checkpoints.sqlite").exists()
    bad = thinkedit("runs", "--artifacts", "nosuch://x", data_dir=tmp_path / "b")
    assert bad.returncode == 2 and "unknown scheme 'nosuch'" in bad.stderr


def test_mcp_results_give_a_local_file_for_remote_stores(photo: Image.Image, tmp_path: Path) -> None:
    from thinkedit.servers.mcp.results import image_info

    store = ArtifactStore(memory_url(), cache_dir=tmp_path / "cache")
    ref = store.put(photo)
    info = image_info(ref, "thinkedit://x", store)
    assert Path(info.path).is_file() and Path(info.path).is_relative_to(tmp_path / "cache")
    local = ArtifactStore(tmp_path / "local")
    assert image_info(local.put(photo), "thinkedit://x", local).path == str(local.path(ref))


def test_a_password_in_the_artifact_store_url_is_masked_where_it_is_shown() -> None:
    """fsspec's FTP, SFTP and SMB stores take credentials in the URL: errors and logs show it masked."""
    store = ArtifactStore("memory://alice:ftp-only-s3cret@files.example/art")
    with pytest.raises(BadInputError, match="not in the artifact store") as missing:
        store.get(ImageRef(sha256="0" * 64, uri="memory://x", width=1, height=1))
    assert "ftp-only-s3cret" not in str(missing.value) and "alice:***@" in str(missing.value)
    assert "ftp-only-s3cret" not in mask_secrets(f"log line: {store.url}")


async def test_a_password_in_the_artifact_store_url_is_never_stored(photo: Image.Image, tmp_path: Path) -> None:
    """Records, checkpoints, image references and a run's files keep the store's URL masked; a resume still works."""
    url = f"memory://alice:ftp-only-s3cret@files.example/art-{uuid.uuid4().hex[:8]}"
    checkpoints = default_checkpoint_url(tmp_path / "a")
    thinker = ScriptedThinker(verdicts((3, 4, "add a red hat"), (9, 9, "done")))
    async with Runner.open(
        tmp_path / "a", checkpoints=checkpoints, artifacts=url, backends=FakeBackends(ScriptedEditor(), thinker),
        retry=default_retry(max_attempts=2, initial_interval=0.01),
    ) as runner:
        record = runner.prepare(photo, "add a hat", make_settings(tmp_path / "a", review=True))
        assert "alice:***@" in record.source.uri and "s3cret" not in record.source.uri
        paused = await runner.start(record)
        assert paused is not None and len(paused.rounds) == 1
        runner.registry.flush(record.run_id)
    # Another process (another data dir) with the same stores reads the masked record and finishes the run.
    thinker = ScriptedThinker(verdicts((9, 9, "done")))
    async with Runner.open(
        tmp_path / "b", checkpoints=checkpoints, artifacts=url, backends=FakeBackends(ScriptedEditor(), thinker),
        retry=default_retry(max_attempts=2, initial_interval=0.01),
    ) as other:
        stored = other.registry.load(record.run_id).settings.artifacts_url
        assert stored is not None and "alice:***@" in stored and "s3cret" not in stored
        state = await other.resume(record.run_id, review="approve")
        assert state is not None and state.status == "done" and len(state.rounds) == 2
        paths = write_outputs(state, other.store, tmp_path / "out")
        other.registry.flush(record.run_id)
    assert Image.open(paths["final"]).size == photo.size
    import fsspec

    memory = fsspec.filesystem("memory")
    stored_files = [memory.cat_file(p) for p in memory.find("/") if "art-" in p and p.endswith(".json")]
    assert stored_files, "the run's record is on the shared store"
    local_files = [p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file()]
    local_files += [p.read_bytes() for p in (tmp_path / "out").iterdir() if p.suffix in (".json", ".html")]
    leaked = [blob for blob in [*stored_files, *local_files] if b"ftp-only-s3cret" in blob]
    assert not leaked, "a stored file holds the store's password"
    assert all("s3cret" not in r.image.uri for r in state.rounds)


def test_a_stored_image_uri_does_not_depend_on_the_secrets_a_process_knows(photo: Image.Image) -> None:
    """Only the URL's own password is masked in what is stored: a known secret elsewhere in it stays as written."""
    from thinkedit.tools.secrets import register_secret

    url = f"memory://stored-{uuid.uuid4().hex}"
    register_secret(url[-32:])  # as if a database password happened to be in the path (unique: nothing else has it)
    assert ArtifactStore(url).put(photo).uri.startswith(url)
    assert make_settings(Path("/tmp"), artifacts_url=url).model_dump(mode="json")["artifacts_url"] == url


def test_a_short_secret_in_the_store_url_is_masked_in_the_stores_messages() -> None:
    """A token too short for the process-wide masking is still masked where the store names itself."""
    store = ArtifactStore(f"memory://bucket/short-{uuid.uuid4().hex[:8]}?token=abc12")
    with pytest.raises(BadInputError, match="not in the artifact store") as missing:
        store.get(ImageRef(sha256="0" * 64, uri="memory://x", width=1, height=1))
    assert "abc12" not in str(missing.value) and "token=***" in str(missing.value)
