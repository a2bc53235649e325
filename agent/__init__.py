"""The Think-while-Edit state machine: state, settings, routing and the graph."""

from agent.graph import build_graph
from agent.settings import LoopSettings
from agent.state import Round, RunState

__all__ = ["LoopSettings", "Round", "RunState", "build_graph"]
