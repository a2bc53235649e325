"""Results files, the with/without-loop summary, its Markdown/CSV forms, the plots and the summary eval saves."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from thinkedit.apps.evaluation.plots import plot_summary
from thinkedit.apps.evaluation.results import append_result, completed_keys, read_results, results_path
from thinkedit.apps.evaluation.summary import ALL, summarize, to_csv, to_markdown
from thinkedit.apps.evaluation.synthetic import write_synthetic_benchmark
from tests.cli import thinkedit
from tests.conftest import EXAMPLES


def row(key: str, task: str, semantic: float, quality: float, rounds: int = 1) -> dict:
    return {"key": key, "task_type": task, "semantic": semantic, "quality": quality,
            "overall": round((semantic * quality) ** 0.5, 4), "rounds": rounds}


SINGLE = [row("1", "add", 4, 9), row("2", "add", 6, 6), row("3", "style", 2, 8), row("4", "style", 9, 9)]
LOOP = [row("1", "add", 9, 9, 3), row("2", "add", 6, 6, 1), row("3", "style", 8, 8, 2)]  # item 4 not judged yet


def test_summary_pairs_items_judged_in_both_settings_per_task_type() -> None:
    rows = summarize(SINGLE, LOOP)
    assert [r.task_type for r in rows] == ["add", "style", ALL]
    add, style, total = rows
    assert (add.items, style.items, total.items) == (2, 1, 3)
    assert add.single_semantic == 5.0 and add.loop_semantic == 7.5
    assert add.single_overall == pytest.approx((6 + 6) / 2) and add.loop_overall == pytest.approx((9 + 6) / 2)
    assert add.delta_overall == pytest.approx(1.5) and add.improved_pct == 50.0 and add.mean_rounds == 2.0
    assert style.single_overall == 4.0 and style.loop_overall == 8.0 and style.improved_pct == 100.0
    assert total.mean_rounds == 2.0 and total.improved_pct == pytest.approx(66.7)
    assert summarize([], []) == [summarize([], [])[0]] and summarize([], [])[0].items == 0


def test_markdown_and_csv_tables() -> None:
    rows = summarize(SINGLE, LOOP)
    md = to_markdown(rows, "gedit")
    assert md.startswith("### gedit") and "| task type | items | single SC |" in md
    assert "| add | 2 | 5.00 | 7.50 | 6.00 | 7.50 | 7.50 | 7.50 | +1.50 | 50.00 | 2.00 |" in md
    assert "| **all** | **3** |" in md
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [p["task_type"] for p in parsed] == ["add", "style", "all"]
    assert float(parsed[0]["loop_overall"]) == 7.5


def test_results_files_keep_the_last_line_per_key_and_survive_a_torn_line(tmp_path: Path) -> None:
    path = results_path(tmp_path, "kris", "loop")
    append_result(path, row("a", "t", 1, 1))
    append_result(path, row("b", "t", 2, 2))
    append_result(path, row("a", "t", 3, 3))
    with path.open("a") as fh:
        fh.write('{"key": "c", "task_ty')  # a process killed mid-write
    rows = read_results(path)
    assert [(r["key"], r["semantic"]) for r in rows] == [("a", 3), ("b", 2)]
    append_result(path, row("c", "t", 4, 4))  # the next line starts on a line of its own
    assert [(r["key"], r["semantic"]) for r in read_results(path)] == [("a", 3), ("b", 2), ("c", 4)]
    assert read_results(tmp_path / "missing.jsonl") == []


def test_completed_keys_need_both_settings(tmp_path: Path) -> None:
    for r in SINGLE:
        append_result(results_path(tmp_path, "gedit", "single"), r)
    for r in LOOP:
        append_result(results_path(tmp_path, "gedit", "loop"), r)
    assert completed_keys(tmp_path, "gedit") == {"1", "2", "3"}
    assert completed_keys(tmp_path, "rise") == set()
    assert json.loads(results_path(tmp_path, "gedit", "loop").read_text().splitlines()[0])["key"] == "1"


def test_plots_one_overview_and_one_per_task_type(tmp_path: Path) -> None:
    paths = plot_summary(summarize(SINGLE, LOOP), tmp_path / "new", "gedit")
    assert [p.name for p in paths] == ["plot-gedit.png", "gedit-add.png", "gedit-style.png", "gedit-all.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 1000


def test_summary_counts_failed_and_not_runnable_items_and_never_shows_an_empty_mean_as_zero(tmp_path: Path) -> None:
    selected = [("1", "add"), ("2", "add"), ("3", "style"), ("4", "style"), ("5", "remove")]
    rows = summarize(SINGLE, LOOP, selected=selected, failed=["5"], not_runnable=2)
    assert [r.task_type for r in rows] == ["add", "remove", "style", ALL]  # "remove": selected, none judged
    add, remove, style, total = rows
    assert (add.selected, add.failed, add.not_runnable) == (2, 0, None)
    assert (remove.items, remove.selected, remove.failed) == (0, 1, 1)
    assert remove.loop_overall is None and remove.delta_overall is None
    assert (total.items, total.selected, total.failed, total.not_runnable) == (3, 5, 1, 2)
    md = to_markdown(rows, "gedit")
    assert "Items: 5 selected to run (3 judged in both settings, 1 failed, 1 not judged yet); 2 not runnable" in md
    assert "| remove | 0 | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |" in md
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert list(parsed[0])[:11] == ["task_type", "items", "single_semantic", "single_quality", "single_overall",
                                    "loop_semantic", "loop_quality", "loop_overall", "delta_overall", "improved_pct",
                                    "mean_rounds"]  # the existing columns keep their place; counts come after
    assert (parsed[1]["loop_overall"], parsed[1]["selected"], parsed[1]["failed"]) == ("", "1", "1")
    assert (parsed[3]["selected"], parsed[3]["failed"], parsed[3]["not_runnable"]) == ("5", "1", "2")


def test_a_summary_with_nothing_judged_says_so(tmp_path: Path) -> None:
    rows = summarize([], [], selected=[("1", "add"), ("2", "add")], failed=["1", "2"], not_runnable=0)
    md = to_markdown(rows, "imgedit")
    assert "0.00" not in md and "n/a" in md
    assert "Items: 2 selected to run (0 judged in both settings, 2 failed)." in md
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert parsed[-1]["task_type"] == ALL and parsed[-1]["single_overall"] == "" and parsed[-1]["improved_pct"] == ""
    assert parsed[-1]["failed"] == "2" and parsed[-1]["not_runnable"] == "0"
    assert plot_summary(rows, tmp_path / "plots", "imgedit") == []


def test_eval_saves_a_summary_that_counts_failed_and_not_runnable_items(tmp_path: Path) -> None:
    bench = write_synthetic_benchmark(tmp_path / "bench", examples_dir=EXAMPLES, items=3)
    for image in (bench / "images").iterdir():
        image.write_text("not a picture")  # every item fails when the loop opens its source
    meta = json.loads((bench / "basic_edit.json").read_text())
    (bench / "basic_edit.json").write_text(json.dumps({**meta, "broken": "not an entry"}))
    out = tmp_path / "out"
    result = thinkedit("eval", "--bench", "imgedit", "--data", str(bench), "--profile", "tiny", "--judge", "tiny",
                       "--max-rounds", "2", "--out", str(out), data_dir=tmp_path / "d")
    assert result.returncode == 1, result.stderr
    md = (out / "summary-imgedit.md").read_text()
    assert "Items: 3 selected to run (0 judged in both settings, 3 failed); 1 not runnable" in md
    assert "0.00" not in md and "| **all** | **0** | **n/a** |" in md
    parsed = csv.DictReader(io.StringIO((out / "summary-imgedit.csv").read_text()))
    [total] = [r for r in parsed if r["task_type"] == ALL]
    assert (total["items"], total["selected"], total["failed"], total["not_runnable"]) == ("0", "3", "3", "1")
    assert total["single_overall"] == total["loop_overall"] == ""
