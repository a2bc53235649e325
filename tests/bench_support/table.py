"""Print what ``make bench`` measured as one table: every ratio beside its target and whether it is met."""

from __future__ import annotations

from typing import Any

from tests.bench_support.spread import Spread, verdict


def table(loops: dict[str, Any], mcp: dict[str, Any], editor: dict[str, Any], starts: dict[str, Any]) -> str:
    """Return the issue's ratios as one Markdown table (median of per-pair ratios, IQR, target)."""
    h = loops["headline"]
    sizes = {name.split(" px")[0]: row for name, row in loops["scaling"] if "3 rounds" in name}
    book, floor = (" / ".join(sizes[k][key].text(0, 1000, " ms") for k in ("128×128", "256×256", "512×512"))
                   for key in ("bookkeeping", "bare_bookkeeping"))
    rows = [
        ("graph ÷ plain loop, 3 rounds, 451×300", *shown(h["graph_over_plain"]), "≤ 1.02",
         verdict(h["graph_over_plain"], 1.02), loops["pressure"]),
        ("bookkeeping per round outside edit and critique, 128 / 256 / 512 px", book,
         sizes["512×512"]["bookkeeping"].interval(0, 1000, " ms"), "≤ 10 ms at 512 px",
         verdict(sizes["512×512"]["bookkeeping"], 0.010), loops["pressure"]),
        ("the same for a bare LangGraph graph of the same steps, engines and saver (the floor), 128 / 256 / 512 px",
         floor, sizes["512×512"]["bare_bookkeeping"].interval(0, 1000, " ms"), "(no target)", "", loops["pressure"]),
        ("graph ÷ that bare graph, 3 rounds, 451×300", *shown(h["graph_over_bare"]), "(no target)", "",
         loops["pressure"]),
        ("editor server ÷ in-process, per edit (128 px, 4 steps, 1 client)",
         *shown(editor["server_over_in_process"]), "≤ 1.05", verdict(editor["server_over_in_process"], 1.05),
         editor["pressure"]),
        ("editor server ÷ the paper's design (FastAPI + a worker process per device)",
         *shown(editor["server_over_paper"]), "≤ 1.0", verdict(editor["server_over_paper"], 1.0), editor["pressure"]),
        ("MCP stdio ÷ direct, 2 rounds", *shown(mcp["mcp_over_direct"]), "≤ 1.03",
         verdict(mcp["mcp_over_direct"], 1.03), mcp["pressure"]),
        ("the same direct run in a second process ÷ direct (the floor under MCP ÷ direct)",
         *shown(mcp["twin_over_direct"]), "(no target)", "", mcp["pressure"]),
        *([("CPU time per run, direct and over MCP stdio (2 rounds)", mcp["cpu_text"], "", "(no target)", "",
            mcp["pressure"])] if mcp["cpu_text"] else []),
        ("`thinkedit serve mcp`: time until it answers `initialize` (a fresh process, empty data dir)",
         *shown(starts["initialize"], 2, 1, " s"), "≤ 1.0 s", verdict(starts["initialize"], 1.0), starts["pressure"]),
        ("the same for the SDK's smallest stdio server (one tool): the floor under it",
         *shown(starts["sdk_initialize"], 2, 1, " s"), "(no target)", "", starts["pressure"]),
        ("`serve mcp` ÷ the SDK's smallest server, until `initialize` (what thinkedit adds to the SDK's start)",
         *shown(starts["initialize_over_sdk"]), "(no target)", "", starts["pressure"]),
        ("`thinkedit serve mcp`: time until it answers `tools/list`",
         *shown(starts["tools_list"], 2, 1, " s"), "(no target)", "", starts["pressure"]),
        ("`thinkedit --help`", *shown(starts["help"], 2, 1, " s"), "≤ 0.5 s", verdict(starts["help"], 0.5),
         starts["pressure"]),
        ("batching on ÷ off, 8 clients", *shown(editor["on_over_off"]), "≥ 1.8",
         verdict(editor["on_over_off"], 1.8, at_most=False), editor["pressure"]),
        ("best-of-K, K=4 ÷ K=1, one round on CPU", *shown(loops["k4_over_k1"]), "(no target)", "",
         loops["pressure"]),
    ]
    lines = ["| ratio | median (IQR, pairs) | the median's interval | target | | measured under |",
             "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def shown(value: Spread, digits: int = 2, scale: float = 1.0, unit: str = "") -> tuple[str, str]:
    """Return a figure's two columns: median with IQR, and the median's interval, in one format."""
    return value.text(digits, scale, unit), value.interval(digits, scale, unit)
