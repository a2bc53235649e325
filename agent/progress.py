"""The events a run streams (``stream_mode="custom"``) and how to say them: one line per phase, for every display.

The nodes emit ``event``s; the CLI prints their lines, the MCP server sends them as progress
notifications, and any embedding may show them; the wording lives here once.
"""

from __future__ import annotations

from typing import Any, Literal

EventName = Literal["round_started", "image_ready", "verdict", "run_finished"]


def event(name: EventName, run_id: str, **fields: Any) -> dict[str, Any]:
    """Build one progress event; every event carries its name and the run id."""
    return {"event": name, "run_id": run_id, **fields}


def short(text: str, limit: int = 90) -> str:
    """Collapse whitespace and cut ``text`` to ``limit`` characters, with an ellipsis when cut."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def usage_text(usage: dict[str, Any] | None) -> str:
    """Say what a round (or run) cost: tokens and, when priced, estimated dollars."""
    if not usage:
        return ""
    tokens = sum(usage.get(k) or 0 for k in ("thinker_input_tokens", "thinker_output_tokens",
                                              "editor_input_tokens", "editor_output_tokens"))
    cost = usage.get("cost_usd")
    return f"{tokens:,} tokens" + (f" · ~${cost:.4f}" if cost is not None else "")


def describe_event(event: dict[str, Any], max_rounds: int | None = None) -> str | None:
    """Return the display line for one event (None for events not shown).

    With ``max_rounds`` the round is shown as ``round n/N``, else as ``round n``.
    """
    name, n = event.get("event"), event.get("round")
    label = f"round {n}/{max_rounds}" if max_rounds and isinstance(n, int) else f"round {n}"
    if name == "round_started":
        return f"{label} · editing (seed {event['seed']}): {short(event['instruction'])!r}"
    if name == "image_ready":
        return f"{label} · edited in {event['edit_seconds']:.2f} s"
    if name == "verdict":
        head = (
            f"{label} · semantic {event['semantic']:g} · quality {event['quality']:g}"
            f" · overall {event['overall']:.2f} (thought {event['think_seconds']:.2f} s)"
        )
        if event.get("usage") and (spent := usage_text(event["usage"])):
            head += f" · {spent}"
        if event.get("stop_reason"):
            return f"{head} → stop ({event['stop_reason']})"
        return f"{head} → refine: {short(event['refined_instruction'])!r}"
    if name == "run_finished":
        return f"done · chose round {event['best_round']} · stop reason: {event['stop_reason']}"
    if name == "awaiting_review":
        return f"{label} · awaiting review of the proposed instruction"
    return None
