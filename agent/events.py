"""Custom stream events the graph emits (``stream_mode="custom"``): names and payloads."""

from __future__ import annotations

from typing import Any, Literal

EventName = Literal["round_started", "image_ready", "verdict", "run_finished"]


def event(name: EventName, run_id: str, **fields: Any) -> dict[str, Any]:
    """Build one progress event; every event carries its name and the run id."""
    return {"event": name, "run_id": run_id, **fields}
