"""The graph as ``langgraph dev`` / LangGraph Server loads it (see langgraph.json).

It carries no checkpointer: the server supplies persistence. Settings come from the run's
context when given, else from the input's ``overrides`` (profile ``$THINKEDIT_PROFILE`` or tiny).
Backends load lazily, on the first run that needs them.
"""

from thinkedit.agent.graph import build_graph

graph = build_graph()
