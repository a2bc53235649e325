"""Malformed benchmark metadata: a bad entry is skipped with a reason naming it, an unreadable file is a clear error.

Also the GEdit-Bench embedded-image cache: written atomically and mended when a cached copy differs.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from thinkedit.apps.evaluation.readers import load_benchmark
from thinkedit.apps.evaluation.synthetic import write_synthetic_benchmark
from thinkedit.tools.errors import BadInputError
from tests.cli import thinkedit
from tests.conftest import EXAMPLES


def png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), "red").save(path)
    return path


def jpeg(colour: str = "blue") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buf, format="JPEG")
    return buf.getvalue()


def test_imgedit_skips_malformed_entries_past_the_first_ones(tmp_path: Path) -> None:
    root = tmp_path / "imgedit"
    png(root / "a.png")
    meta: dict[str, object] = {str(n): {"id": "a.png", "prompt": "Add a hat.", "edit_type": "add"} for n in range(25)}
    meta |= {"text": "oops", "no-prompt": {"id": "a.png"}, "list-id": {"id": ["a.png"], "prompt": "p"}}
    (root / "basic_edit.json").write_text(json.dumps(meta))
    loaded = load_benchmark("imgedit", root, cache_dir=tmp_path / "c")
    assert len(loaded.items) == 25
    reasons = dict(loaded.skipped)
    assert sorted(reasons) == ["list-id", "no-prompt", "text"]
    assert all("malformed entry" in r and "basic_edit.json" in r for r in reasons.values())
    assert "'prompt'" in reasons["no-prompt"] and "'id'" in reasons["list-id"]


def test_a_broken_unrelated_json_file_does_not_stop_discovery(tmp_path: Path) -> None:
    root = tmp_path / "imgedit"
    png(root / "a.png")
    (root / "a-broken.json").write_text("{not json")
    (root / "edits.json").write_text(json.dumps({"1": {"id": "a.png", "prompt": "Add a hat."}}))
    assert [i.key for i in load_benchmark("imgedit", root, cache_dir=tmp_path / "c").items] == ["1"]
    (root / "edits.json").write_text("[1, 2]")  # now nothing valid: the error names the unreadable file
    with pytest.raises(BadInputError, match="no ImgEdit metadata.*a-broken.json"):
        load_benchmark("imgedit", root, cache_dir=tmp_path / "c")


def test_rise_skips_malformed_entries_even_first(tmp_path: Path) -> None:
    root = tmp_path / "rise"
    png(root / "1.png")
    good = {"index": "t_1", "category": "temporal", "instruction": "A year later.", "image": "1.png"}
    rows = ["oops", good, {**good, "index": None}, {**good, "index": "t_3", "instruction": 7}]
    (root / "data_total.json").write_text(json.dumps(rows))
    loaded = load_benchmark("rise", root, cache_dir=tmp_path / "c")
    assert [i.key for i in loaded.items] == ["t_1"]
    assert [k for k, _ in loaded.skipped] == ["entry 1", "entry 3", "t_3"]
    assert all("malformed entry" in r and "data_total.json" in r for _, r in loaded.skipped)


def test_kris_rejects_an_annotation_file_that_is_not_an_object_and_skips_bad_entries(tmp_path: Path) -> None:
    root = tmp_path / "kris"
    png(root / "colour" / "1.png")
    (root / "colour" / "annotation.json").write_text(json.dumps({
        "1": {"ori_img": "1.png", "ins_en": "Make it blue."},
        "2": {"ori_img": "1.png", "ins_en": ["Make it", "green."]},
        "3": "oops",
    }))
    loaded = load_benchmark("kris", root, cache_dir=tmp_path / "c")
    assert [i.key for i in loaded.items] == ["colour/1"]
    assert [k for k, _ in loaded.skipped] == ["colour/2", "colour/3"]
    assert all("malformed entry" in r and "annotation.json" in r for _, r in loaded.skipped)
    (root / "colour" / "annotation.json").write_text("[1, 2]")
    with pytest.raises(BadInputError, match="colour/annotation.json.*not an object"):
        load_benchmark("kris", root, cache_dir=tmp_path / "c")


def test_gedit_jsonl_skips_a_line_that_is_not_json_or_lacks_fields(tmp_path: Path) -> None:
    root = tmp_path / "gedit"
    png(root / "a.png")
    row = {"key": "k1", "task_type": "t", "instruction": "Make it night.", "instruction_language": "en",
           "input_image": "a.png"}
    lines = [json.dumps(row), "{torn", json.dumps({**row, "key": "k2", "instruction": None}), json.dumps([1])]
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    (root / "notes.json").write_text("{broken")  # unrelated and unreadable: passed over
    loaded = load_benchmark("gedit", root, cache_dir=tmp_path / "c")
    assert [i.key for i in loaded.items] == ["en/k1"]
    skipped = dict(loaded.skipped)
    assert sorted(skipped) == [f"{root / 'metadata.jsonl'} line 2", f"{root / 'metadata.jsonl'} line 4", "en/k2"]
    assert "not JSON" in skipped[f"{root / 'metadata.jsonl'} line 2"]
    assert "'instruction'" in skipped["en/k2"] and "metadata.jsonl line 3" in skipped["en/k2"]


def test_gedit_skips_an_undecodable_embedded_image_and_names_an_unreadable_table(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"key": "k1", "task_type": "t", "instruction": "Make it night.", "instruction_language": "en",
         "input_image": {"bytes": b"not an image", "path": None}},
        {"key": "k2", "task_type": "t", "instruction": "Make it red.", "instruction_language": "en",
         "input_image": {"bytes": jpeg(), "path": None}},
    ]
    root = tmp_path / "gedit"
    root.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), root / "train.parquet")
    loaded = load_benchmark("gedit", root, cache_dir=tmp_path / "c")
    assert [i.key for i in loaded.items] == ["en/k2"]
    [(key, reason)] = loaded.skipped
    assert key == "en/k1" and "embedded image unreadable" in reason and "train.parquet row 1" in reason
    (root / "train.parquet").write_bytes(b"PAR1 torn")
    with pytest.raises(BadInputError, match="cannot read .*train.parquet"):
        load_benchmark("gedit", root, cache_dir=tmp_path / "c")


def test_eval_cli_exits_with_the_bad_input_code_naming_the_file(tmp_path: Path) -> None:
    bench = write_synthetic_benchmark(tmp_path / "bench", "kris", examples_dir=EXAMPLES)
    broken = sorted(bench.glob("*/annotation.json"))[0]
    broken.write_text('"just a string"')
    result = thinkedit("eval", "--bench", "kris", "--data", str(bench), "--judge", "tiny", "--profile", "tiny",
                       "--out", str(tmp_path / "out"), "--no-plot", data_dir=tmp_path / "d")
    assert result.returncode == 2, result.stderr
    assert "annotation.json" in result.stderr and "unexpected" not in result.stderr


def test_gedit_cache_mends_a_torn_copy_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = jpeg("green")
    row = {"key": "k1", "task_type": "t", "instruction": "Make it red.", "instruction_language": "en",
           "input_image": {"bytes": data, "path": None}}
    root = tmp_path / "gedit"
    root.mkdir()
    pq.write_table(pa.Table.from_pylist([row]), root / "train.parquet")
    cache = tmp_path / "cache"
    [item] = load_benchmark("gedit", root, cache_dir=cache).items
    assert item.image.read_bytes() == data
    item.image.write_bytes(data[: len(data) // 2])  # a write cut short by a crash
    [again] = load_benchmark("gedit", root, cache_dir=cache).items
    assert again.image == item.image and again.image.read_bytes() == data
    item.image.write_bytes(bytes(len(data)))  # same size, other bytes
    assert load_benchmark("gedit", root, cache_dir=cache).items[0].image.read_bytes() == data
    assert [p.name for p in (cache / "gedit").iterdir()] == [item.image.name]
