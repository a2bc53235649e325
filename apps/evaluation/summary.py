"""Summarise results with and without the loop, per task type (pure functions on result rows)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from statistics import fmean
from typing import Any

ALL = "all"


@dataclass(frozen=True)
class SummaryRow:
    """Mean judge scores of one task type (or ``all``) for the single edit and the loop."""

    task_type: str
    items: int
    single_semantic: float
    single_quality: float
    single_overall: float
    loop_semantic: float
    loop_quality: float
    loop_overall: float
    delta_overall: float
    improved_pct: float
    mean_rounds: float


def _mean(rows: list[dict[str, Any]], field: str) -> float:
    return round(fmean(float(r[field]) for r in rows), 3) if rows else 0.0


def _row(task: str, pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> SummaryRow:
    single = [s for s, _ in pairs]
    loop = [lo for _, lo in pairs]
    improved = sum(1 for s, lo in pairs if float(lo["overall"]) > float(s["overall"]))
    return SummaryRow(
        task_type=task,
        items=len(pairs),
        single_semantic=_mean(single, "semantic"),
        single_quality=_mean(single, "quality"),
        single_overall=_mean(single, "overall"),
        loop_semantic=_mean(loop, "semantic"),
        loop_quality=_mean(loop, "quality"),
        loop_overall=_mean(loop, "overall"),
        delta_overall=round(_mean(loop, "overall") - _mean(single, "overall"), 3),
        improved_pct=round(100.0 * improved / len(pairs), 1) if pairs else 0.0,
        mean_rounds=_mean(loop, "rounds"),
    )


def summarize(single: Iterable[dict[str, Any]], loop: Iterable[dict[str, Any]]) -> list[SummaryRow]:
    """Pair items judged in both settings; return one row per task type (sorted) and a final ``all`` row."""
    by_key = {str(r["key"]): r for r in single}
    pairs = [(by_key[str(r["key"])], r) for r in loop if str(r["key"]) in by_key]
    tasks = sorted({str(lo["task_type"]) for _, lo in pairs})
    rows = [_row(t, [(s, lo) for s, lo in pairs if str(lo["task_type"]) == t]) for t in tasks]
    return [*rows, _row(ALL, pairs)]


HEADERS = (
    ("task type", "task_type"),
    ("items", "items"),
    ("single SC", "single_semantic"),
    ("single PQ", "single_quality"),
    ("single O", "single_overall"),
    ("loop SC", "loop_semantic"),
    ("loop PQ", "loop_quality"),
    ("loop O", "loop_overall"),
    ("Δ O", "delta_overall"),
    ("improved %", "improved_pct"),
    ("rounds", "mean_rounds"),
)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def to_markdown(rows: list[SummaryRow], title: str = "") -> str:
    """Render the summary as a Markdown table (SC semantic, PQ quality, O overall; judge scores 0-10)."""
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(h for h, _ in HEADERS) + " |")
    lines.append("|" + "|".join("---" if f == "task_type" else "---:" for _, f in HEADERS) + "|")
    for row in rows:
        data = asdict(row)
        cells = [_cell(data[f]) if f != "delta_overall" else f"{data[f]:+.2f}" for _, f in HEADERS]
        if row.task_type == ALL:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: list[SummaryRow]) -> str:
    """Render the summary as CSV with the dataclass field names as the header."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[f for _, f in HEADERS], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(asdict(row))
    return buffer.getvalue()
