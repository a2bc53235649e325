"""The graph as ``langgraph dev`` / LangGraph Server loads it (see langgraph.json).

It carries no checkpointer: the server supplies persistence. Settings come from the run's
context when given, else from the input's ``overrides`` (profile ``$THINKEDIT_PROFILE`` or tiny).
Backends load lazily, on the first run that needs them. Its schemas are what a caller sees (the
server's ``/mcp`` tool too): the user's input in, the run's result out.
"""

from thinkedit.agent.graph import build_graph
from thinkedit.agent.state import RunInput, RunOutput

graph = build_graph(input_schema=RunInput, output_schema=RunOutput)
