"""File names built from data never leave their directory: benchmark readers, recordings, data build (issue 13)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from thinkedit.apps.evaluation.readers import load_benchmark
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.safenames import confined, safe_component


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "blue").save(buf, format="JPEG")
    return buf.getvalue()


def inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/b", "..", ".hidden", "a\0b", "C:\\x", "", " "])
def test_safe_component_is_one_harmless_component(name: str) -> None:
    safe = safe_component(name)
    assert safe and "/" not in safe and "\\" not in safe and "\0" not in safe and not safe.startswith(".")
    assert Path(safe).name == safe
    assert safe_component("k1") == "k1" and safe_component("background_change") == "background_change"
    assert safe_component("a/b") != safe_component("a_b")  # a changed name never collides with a clean one


@pytest.mark.parametrize("relative", ["../x.png", "/abs/x.png", "a/../../x.png", "a\0.png"])
def test_confined_refuses_escapes(tmp_path: Path, relative: str) -> None:
    with pytest.raises(BadInputError):
        confined(tmp_path, relative)
    assert confined(tmp_path, "a/b.png") == tmp_path / "a" / "b.png"


def test_gedit_rows_cannot_write_or_read_outside(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    elsewhere = tmp_path / "elsewhere"
    rows = [
        {"key": "k1", "task_type": "t", "instruction": "Make it night.", "instruction_language": str(elsewhere / "x"),
         "input_image": {"bytes": jpeg(), "path": None}},
        {"key": "../../../escaped", "task_type": "../t", "instruction": "Make it red.", "instruction_language": "en",
         "input_image": {"bytes": jpeg(), "path": None}},
    ]
    root = tmp_path / "gedit"
    root.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), root / "train.parquet")
    cache = tmp_path / "out" / "sources"
    loaded = load_benchmark("gedit", root, cache_dir=cache)
    assert len(loaded.items) == 2
    for item in loaded.items:
        assert inside(item.image, cache), item.image
        assert inside(tmp_path / "out" / "outputs" / item.output_name, tmp_path / "out" / "outputs"), item.output_name
    assert not elsewhere.exists() and not (tmp_path / "escaped.jpeg").exists()
    assert sorted(p.parent for p in cache.rglob("*.jpeg")) == [cache / "gedit"] * 2


def test_imgedit_rise_kris_names_stay_inside(tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8)).save(secret)
    imgedit = tmp_path / "imgedit"
    imgedit.mkdir()
    Image.new("RGB", (8, 8)).save(imgedit / "a.png")
    (imgedit / "basic_edit.json").write_text(json.dumps({
        "../../evil": {"id": "a.png", "prompt": "p", "edit_type": "add"},
        "stolen": {"id": str(secret), "prompt": "p", "edit_type": "add"},
        "climb": {"id": "../secret.png", "prompt": "p", "edit_type": "add"},
    }))
    loaded = load_benchmark("imgedit", imgedit, cache_dir=tmp_path / "c")
    assert [i.key for i in loaded.items] == ["../../evil"]  # the others' images are outside: skipped
    assert "/" not in loaded.items[0].output_name
    rise = tmp_path / "rise"
    rise.mkdir()
    Image.new("RGB", (8, 8)).save(rise / "a.png")
    (rise / "data_total.json").write_text(json.dumps([
        {"index": "../../x", "category": "/abs", "instruction": "i", "image": "a.png"},
    ]))
    item = load_benchmark("rise", rise, cache_dir=tmp_path / "c").items[0]
    out = tmp_path / "o"
    assert inside(out / item.output_name, out) and item.output_name.count("/") == 2
    kris = tmp_path / "kris" / "cat"
    kris.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(kris / "a.png")
    (kris / "annotation.json").write_text(json.dumps({"../../../y": {"ori_img": "a.png", "ins_en": "i"}}))
    item = load_benchmark("kris", tmp_path / "kris", cache_dir=tmp_path / "c").items[0]
    assert inside(out / item.output_name, out) and item.output_name.count("/") == 1


def test_a_recording_named_by_a_hostile_run_id_stays_in_its_root(tmp_path: Path) -> None:
    from thinkedit.agent.recording import record_trajectory
    from thinkedit.agent.state import RunState
    from thinkedit.tools.store import ArtifactStore

    store = ArtifactStore(tmp_path / "artifacts")
    source = store.put(Image.new("RGB", (8, 8)))
    from tests.test_graph import make_settings

    state = RunState(run_id="../../escaped", source=source, instruction="x", settings=make_settings(tmp_path))
    target = record_trajectory(state, store, tmp_path / "rec")
    assert target.parent == tmp_path / "rec" and not (tmp_path / "escaped").exists()


def test_data_build_confines_names_from_trajectory_files(tmp_path: Path) -> None:
    from tests.test_data_build import write_trajectory
    from tests.test_data_rules import traj
    from thinkedit.apps.dataset.build import build_dataset

    root = tmp_path / "recorded"
    folder = write_trajectory(root, traj("t0", [3, 6, 2], task="add"))
    data = json.loads((folder / "trajectory.json").read_text())
    data["id"] = "../../../escaped"
    (folder / "trajectory.json").write_text(json.dumps(data))
    out = tmp_path / "dataset"
    build_dataset(root, out, rl_fraction=0.0)
    records = [json.loads(line) for line in (out / "sft.jsonl").read_text().splitlines()]
    assert records
    for record in records:
        for image in record["images"]:
            assert inside(out / image, out / "images") and (out / image).is_file()
    assert not (tmp_path / "escaped").exists()
    data["source_image"] = "../../../secret.png"
    (folder / "trajectory.json").write_text(json.dumps(data))
    (tmp_path / "secret.png").write_bytes(b"secret")
    with pytest.raises(BadInputError, match="leaves"):
        build_dataset(root, tmp_path / "dataset2", rl_fraction=0.0)


@pytest.mark.parametrize("run_id", ["abc\n", "abc\r", "a" * 65, "", "a/b", "..", "ab c"])
def test_a_run_id_names_one_record_only_when_all_of_it_is_plain(tmp_path: Path, run_id: str) -> None:
    from thinkedit.agent.runs import RunRegistry

    registry = RunRegistry(tmp_path / "runs")
    with pytest.raises(BadInputError, match="invalid run id"):
        registry.load(run_id)
    for plain in ("abc", "a" * 64, "A_b-9"):  # these pass the check, and name no record yet
        with pytest.raises(BadInputError, match="unknown run id"):
            registry.load(plain)


@pytest.mark.parametrize("run_id", ["../escape", "nope"])
async def test_resume_refuses_a_bad_or_unknown_id_before_taking_a_lock_in_its_name(tmp_path: Path, run_id: str) -> None:
    from thinkedit.agent.checkpoint import memory_checkpointer
    from thinkedit.agent.runs import Runner

    runner = Runner(tmp_path / "data", memory_checkpointer())
    with pytest.raises(BadInputError, match="invalid run id|unknown run id"):
        await runner.resume(run_id)
    assert not list(tmp_path.rglob("*.lock"))  # no lock file, inside the data dir or out of it
