"""Summarise results with and without the loop, per task type (pure functions on result rows).

Besides the judged items' means, a summary counts the items selected to run, those that failed and
those the reader found not runnable, so a table never hides them; a mean over no items is ``None``
(``n/a`` in Markdown, an empty CSV cell), never 0.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from statistics import fmean
from typing import Any

ALL = "all"


@dataclass(frozen=True)
class SummaryRow:
    """Mean judge scores of one task type (or ``all``) for the single edit and the loop, and its item counts.

    ``items`` counts the items judged in both settings; ``selected``, ``failed`` and ``not_runnable`` are
    ``None`` where unknown (not_runnable is known for ``all`` only: a skipped item may have no task type).
    """

    task_type: str
    items: int
    single_semantic: float | None
    single_quality: float | None
    single_overall: float | None
    loop_semantic: float | None
    loop_quality: float | None
    loop_overall: float | None
    delta_overall: float | None
    improved_pct: float | None
    mean_rounds: float | None
    selected: int | None = None
    failed: int | None = None
    not_runnable: int | None = None


def _mean(rows: list[dict[str, Any]], field: str) -> float | None:
    return round(fmean(float(r[field]) for r in rows), 3) if rows else None


def _row(task: str, pairs: list[tuple[dict[str, Any], dict[str, Any]]], **counts: int | None) -> SummaryRow:
    single = [s for s, _ in pairs]
    loop = [lo for _, lo in pairs]
    improved = sum(1 for s, lo in pairs if float(lo["overall"]) > float(s["overall"]))
    before, after = _mean(single, "overall"), _mean(loop, "overall")
    return SummaryRow(
        task_type=task,
        items=len(pairs),
        single_semantic=_mean(single, "semantic"),
        single_quality=_mean(single, "quality"),
        single_overall=_mean(single, "overall"),
        loop_semantic=_mean(loop, "semantic"),
        loop_quality=_mean(loop, "quality"),
        loop_overall=_mean(loop, "overall"),
        delta_overall=round(after - before, 3) if after is not None and before is not None else None,
        improved_pct=round(100.0 * improved / len(pairs), 1) if pairs else None,
        mean_rounds=_mean(loop, "rounds"),
        **counts,
    )


def summarize(
    single: Iterable[dict[str, Any]],
    loop: Iterable[dict[str, Any]],
    *,
    selected: Collection[tuple[str, str]] | None = None,
    failed: Collection[str] = (),
    not_runnable: int | None = None,
) -> list[SummaryRow]:
    """Pair items judged in both settings; return one row per task type (sorted) and a final ``all`` row.

    ``selected`` holds the (key, task type) of every item chosen to run, so a task type none of whose
    items was judged still gets a row; ``failed`` holds the keys that failed; ``not_runnable`` counts
    the items the reader skipped.
    """
    by_key = {str(r["key"]): r for r in single}
    pairs = [(by_key[str(r["key"])], r) for r in loop if str(r["key"]) in by_key]
    chosen = {str(k): str(t) for k, t in selected} if selected is not None else None
    tasks = sorted({str(lo["task_type"]) for _, lo in pairs} | set((chosen or {}).values()))
    failed_keys = {str(k) for k in failed}

    def counts(task: str | None) -> dict[str, int | None]:
        if chosen is None:
            return {}
        keys = {k for k, t in chosen.items() if task is None or t == task}
        return {"selected": len(keys), "failed": len(keys & failed_keys),
                "not_runnable": not_runnable if task is None else None}

    rows = [_row(t, [(s, lo) for s, lo in pairs if str(lo["task_type"]) == t], **counts(t)) for t in tasks]
    return [*rows, _row(ALL, pairs, **counts(None))]


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
COUNTS = ("selected", "failed", "not_runnable")
"""CSV columns after the table's: items selected to run, failed, not runnable (empty where unknown)."""


def _cell(value: Any, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:+.2f}" if signed else f"{value:.2f}"
    return str(value)


def _tally(total: SummaryRow) -> str:
    """Say how many items were selected, judged, failed and not runnable (the ``all`` row's counts)."""
    if total.selected is None:
        return ""
    parts = [f"{total.items} judged in both settings", f"{total.failed} failed"]
    pending = total.selected - total.items - (total.failed or 0)
    if pending > 0:
        parts.append(f"{pending} not judged yet")
    skipped = f"; {total.not_runnable} not runnable (skipped when the benchmark was read)" if total.not_runnable else ""
    return f"Items: {total.selected} selected to run ({', '.join(parts)}){skipped}."


def to_markdown(rows: list[SummaryRow], title: str = "") -> str:
    """Render the summary as a Markdown table (SC semantic, PQ quality, O overall; judge scores 0-10)."""
    lines = [f"### {title}", ""] if title else []
    tally = _tally(rows[-1]) if rows and rows[-1].task_type == ALL else ""
    if tally:
        lines += [tally, ""]
    lines.append("| " + " | ".join(h for h, _ in HEADERS) + " |")
    lines.append("|" + "|".join("---" if f == "task_type" else "---:" for _, f in HEADERS) + "|")
    for row in rows:
        data = asdict(row)
        cells = [_cell(data[f], signed=f == "delta_overall") for _, f in HEADERS]
        if row.task_type == ALL:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: list[SummaryRow]) -> str:
    """Render the summary as CSV with the dataclass field names as the header (a mean over no items is empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*(f for _, f in HEADERS), *COUNTS], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(asdict(row))
    return buffer.getvalue()
