"""Benchmark readers on each published layout (hand-built copies), and the synthetic benchmark writer."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from thinkedit.apps.evaluation.benchmarks import BENCHMARKS
from thinkedit.apps.evaluation.readers import load_benchmark
from thinkedit.apps.evaluation.synthetic import SYNTHETIC_ITEMS, write_synthetic_benchmark
from tests.conftest import EXAMPLES
from thinkedit.tools.errors import BadInputError


def png(path: Path, colour: str = "red") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), colour).save(path)
    return path


@pytest.mark.parametrize("layout", BENCHMARKS)
def test_synthetic_benchmark_round_trips_through_every_reader(layout: str, tmp_path: Path) -> None:
    root = write_synthetic_benchmark(tmp_path / layout, layout, examples_dir=EXAMPLES)
    loaded = load_benchmark(layout, root, cache_dir=tmp_path / "cache")
    assert loaded.skipped == []
    assert sorted(i.instruction for i in loaded.items) == sorted(i[1] for i in SYNTHETIC_ITEMS)
    assert {i.task_type for i in loaded.items} == {"add", "alter", "style"}
    assert all(i.image.is_file() and i.bench == layout for i in loaded.items)
    assert len({i.output_name for i in loaded.items}) == len(SYNTHETIC_ITEMS)
    if layout in ("rise", "kris"):
        assert all(i.notes for i in loaded.items)  # the reference notes reach the judge


def test_synthetic_benchmark_checks_its_inputs(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="layout"):
        write_synthetic_benchmark(tmp_path, "magicbrush", examples_dir=EXAMPLES)
    with pytest.raises(BadInputError, match="not found"):
        write_synthetic_benchmark(tmp_path, examples_dir=tmp_path / "nowhere")
    root = write_synthetic_benchmark(tmp_path / "two", examples_dir=EXAMPLES, items=2)
    assert len(json.loads((root / "basic_edit.json").read_text())) == 2


def test_imgedit_reads_the_edit_json_and_finds_images_under_a_subfolder(tmp_path: Path) -> None:
    root = tmp_path / "imgedit"
    png(root / "Benchmark" / "singleturn" / "animal" / "000342021.jpg")
    meta = {
        "1082": {"id": "animal/000342021.jpg", "prompt": "Change the shell texture.", "edit_type": "alter"},
        "97": {"id": "for_add/000236569.jpg", "prompt": "Add a chandelier.", "edit_type": "add"},
    }
    root.mkdir(exist_ok=True)
    (root / "basic_edit.json").write_text(json.dumps(meta))
    (root / "unrelated.json").write_text("[1, 2]")
    loaded = load_benchmark("imgedit", root, cache_dir=tmp_path / "c")
    [only] = loaded.items
    assert (only.key, only.task_type, only.output_name) == ("1082", "alter", "1082.png")
    assert loaded.skipped == [("97", "image for_add/000236569.jpg not found")]


def test_rise_skips_multi_image_items_and_says_when_only_a_reference_image_exists(tmp_path: Path) -> None:
    root = tmp_path / "rise"
    png(root / "data" / "temporal_reasoning_images" / "1.png")
    png(root / "data" / "causal_reasoning_images" / "10.png")
    rows = [
        {"index": "temporal_reasoning_1", "category": "temporal_reasoning", "instruction": "A year later.",
         "image": "temporal_reasoning_images/1.png", "reference": "Rotten, blackened banana."},
        {"index": "causal_reasoning_10", "category": "causal_reasoning", "instruction": "Remove the balloon.",
         "image": ["causal_reasoning_images/10.png"], "reference_img": "causal_reasoning_images/10_ref.png"},
        {"index": "temporal_reasoning_8", "category": "temporal_reasoning", "instruction": "Mix them.",
         "image": ["a.png", "b.png"]},
    ]
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "data_total.json").write_text(json.dumps(rows))
    loaded = load_benchmark("rise", root, cache_dir=tmp_path / "c")
    first, second = loaded.items
    assert first.notes == "Rotten, blackened banana."
    assert first.output_name == "images/temporal_reasoning/temporal_reasoning_1.png"
    assert "reference image" in second.notes and second.task_type == "causal_reasoning"
    assert loaded.skipped == [("temporal_reasoning_8", "2 input images (the loop edits one image)")]


def test_kris_reads_every_category_folder(tmp_path: Path) -> None:
    root = tmp_path / "download" / "KRIS_Bench"
    png(root / "abstract_reasoning" / "1.jpg")
    png(root / "color_change" / "3.png")
    (root / "abstract_reasoning" / "annotation.json").write_text(json.dumps({
        "1": {"ori_img": "1.jpg", "ins_en": "Fill in the number.", "explain_en": "32, the product divided by 10."},
        "2": {"ori_img": ["a.jpg", "b.jpg"], "ins_en": "Combine them."},
    }))
    (root / "color_change" / "annotation.json").write_text(json.dumps({"3": {"ori_img": "3.png", "ins_en": "Make it blue."}}))
    loaded = load_benchmark("kris", tmp_path / "download", cache_dir=tmp_path / "c")
    assert [(i.key, i.task_type, i.output_name) for i in loaded.items] == [
        ("abstract_reasoning/1", "abstract_reasoning", "abstract_reasoning/1.png"),
        ("color_change/3", "color_change", "color_change/3.png"),
    ]
    assert loaded.items[0].notes.startswith("32") and loaded.items[1].notes == "none"
    assert [k for k, _ in loaded.skipped] == ["abstract_reasoning/2"]
    assert len(load_benchmark("kris", tmp_path / "download", cache_dir=tmp_path / "c", task_types={"color_change"}).items) == 1


def test_gedit_reads_parquet_rows_with_embedded_images_and_filters_the_language(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def image_bytes(colour: str) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", (16, 16), colour).save(buf, format="JPEG")
        return buf.getvalue()

    rows = [
        {"key": "k1", "task_type": "background_change", "instruction": "Make it night.", "instruction_language": "en",
         "input_image": {"bytes": image_bytes("blue"), "path": None}, "Intersection_exist": True},
        {"key": "k1", "task_type": "background_change", "instruction": "变成夜晚。", "instruction_language": "cn",
         "input_image": {"bytes": image_bytes("blue"), "path": None}, "Intersection_exist": True},
        {"key": "k2", "task_type": "color_alter", "instruction": "Make it red.", "instruction_language": "en",
         "input_image": {"bytes": image_bytes("green"), "path": None}, "Intersection_exist": False},
    ]
    root = tmp_path / "gedit" / "data"
    root.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), root / "train-00000-of-00001.parquet")
    loaded = load_benchmark("gedit", tmp_path / "gedit", cache_dir=tmp_path / "cache", languages={"en"})
    assert [(i.key, i.task_type, i.output_name) for i in loaded.items] == [
        ("en/k1", "background_change", "fullset/background_change/en/k1.png"),
        ("en/k2", "color_alter", "fullset/color_alter/en/k2.png"),
    ]
    assert Image.open(loaded.items[1].image).getpixel((8, 8))[1] > 100  # the green picture, extracted once
    every = load_benchmark("gedit", tmp_path / "gedit", cache_dir=tmp_path / "cache")
    assert len(every.items) == 3 and {i.language for i in every.items} == {"en", "cn"}


def test_loading_reports_bad_directories_and_duplicate_keys(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="unknown benchmark"):
        load_benchmark("magicbrush", tmp_path, cache_dir=tmp_path)
    with pytest.raises(BadInputError, match="not found"):
        load_benchmark("imgedit", tmp_path / "missing", cache_dir=tmp_path)
    with pytest.raises(BadInputError, match="no ImgEdit metadata"):
        load_benchmark("imgedit", tmp_path, cache_dir=tmp_path)
    for bench in ("rise", "kris", "gedit"):
        with pytest.raises(BadInputError):
            load_benchmark(bench, tmp_path, cache_dir=tmp_path)
    png(tmp_path / "g" / "a.png")
    row = {"key": "same", "task_type": "t", "instruction": "x", "instruction_language": "en", "input_image": "a.png"}
    (tmp_path / "g" / "metadata.jsonl").write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(BadInputError, match="duplicate"):
        load_benchmark("gedit", tmp_path / "g", cache_dir=tmp_path)


def test_limit_keeps_the_first_items(tmp_path: Path) -> None:
    root = write_synthetic_benchmark(tmp_path / "b", examples_dir=EXAMPLES)
    loaded = load_benchmark("imgedit", root, cache_dir=tmp_path, limit=2)
    assert [i.key for i in loaded.items] == ["1", "2"]

