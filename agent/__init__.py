"""The Think-while-Edit state machine: state, settings, routing and the graph.

The names below load on first use (PEP 562), so importing a light submodule such as
``thinkedit.agent.progress`` does not import LangGraph.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from thinkedit.agent.graph import build_graph
    from thinkedit.agent.settings import LoopSettings
    from thinkedit.agent.state import Round, RunState

_EXPORTS = {
    "build_graph": "thinkedit.agent.graph",
    "LoopSettings": "thinkedit.agent.settings",
    "Round": "thinkedit.agent.state",
    "RunState": "thinkedit.agent.state",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
