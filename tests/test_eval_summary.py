"""Results files, the with/without-loop summary, its Markdown/CSV forms and the plots."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from thinkedit.apps.evaluation.plots import plot_summary
from thinkedit.apps.evaluation.results import append_result, completed_keys, read_results, results_path
from thinkedit.apps.evaluation.summary import ALL, summarize, to_csv, to_markdown


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
