"""Plot a summary: one overview chart across task types and one chart per task type (PNG, Agg).

matplotlib is optional (the ``eval`` extra); without it no plots are drawn and a warning says so.
Rows with no judged item (no means to draw) are left out; with none judged at all nothing is drawn.
Figures are made with ``matplotlib.figure.Figure`` (the Agg canvas), never pyplot, so nothing
global changes and no display is needed.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from thinkedit.apps.evaluation.summary import ALL, SummaryRow

log = logging.getLogger(__name__)

_COLOURS = {"single": "#9aa5b1", "loop": "#2b6cb0"}


def _figure(width: float, height: float):  # type: ignore[no-untyped-def]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _bars(ax, labels: list[str], single: list[float], loop: list[float]) -> None:  # type: ignore[no-untyped-def]
    positions = range(len(labels))
    width = 0.38
    for offset, values, label, colour in ((-width / 2, single, "single edit", _COLOURS["single"]),
                                          (width / 2, loop, "Think-while-Edit", _COLOURS["loop"])):
        bars = ax.bar([p + offset for p in positions], values, width, label=label, color=colour)
        ax.bar_label(bars, fmt="%.2f", fontsize="x-small", padding=1)
    ax.set_xticks(list(positions), labels, rotation=30 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center")
    ax.set_ylim(0, 11.8)  # room above 10 for the value labels and the legend
    ax.set_yticks(range(0, 11, 2))
    ax.set_ylabel("judge score (0-10)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper center", ncol=2, fontsize="small", frameon=False)


def _slug(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_-]+", "-", name).strip("-") or "task"


def plot_summary(rows: list[SummaryRow], out_dir: str | Path, bench: str) -> list[Path]:
    """Write ``plot-<bench>.png`` (overall score per task type) and ``plots/<bench>-<task>.png``; return the paths."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        log.warning("matplotlib is not installed (pip install 'thinkedit[eval]'); no plots drawn")
        return []
    rows = [r for r in rows if r.items]
    if not rows:
        log.warning("no item was judged in both settings; no plots drawn")
        return []
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    tasks = [r for r in rows if r.task_type != ALL] or rows
    fig = _figure(max(6.0, 1.2 * len(tasks) + 2), 4.5)
    ax = fig.add_subplot()
    _bars(ax, [r.task_type for r in tasks], [r.single_overall for r in tasks], [r.loop_overall for r in tasks])
    ax.set_title(f"{bench}: overall judge score per task type")
    fig.tight_layout()
    written.append(out / f"plot-{bench}.png")
    fig.savefig(written[-1])
    for row in rows:
        fig = _figure(5.0, 4.0)
        ax = fig.add_subplot()
        _bars(
            ax,
            ["semantic", "quality", "overall"],
            [row.single_semantic, row.single_quality, row.single_overall],
            [row.loop_semantic, row.loop_quality, row.loop_overall],
        )
        ax.set_title(f"{bench} · {row.task_type} ({row.items} items, {row.mean_rounds:.1f} rounds)")
        fig.tight_layout()
        written.append(out / "plots" / f"{bench}-{_slug(row.task_type)}.png")
        fig.savefig(written[-1])
    return written
