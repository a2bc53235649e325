"""The graph as ``langgraph dev`` / LangGraph Server loads it (see langgraph.json).

It carries no checkpointer: the server supplies persistence. A server's run brings a partial
context or none, so the context here is a profile and loop overrides (``SettingsInput``); the
``prepare`` node resolves them once (``agent.settings.run_settings``: context, the input's
``overrides``, profile ``$THINKEDIT_PROFILE`` or tiny) into the run's state, where every later
node reads them. Backends load lazily, on the first run that needs them. Its schemas are what a
caller sees (the server's ``/mcp`` tool too): the user's input in, the run's result out. A run's
client may name any path, so the files it names (images, a profile file) must lie under the server's
working directory, its data dir or a folder in ``$THINKEDIT_ALLOW_ROOT`` (``agent.settings.input_roots``).
"""

from thinkedit.agent.graph import build_graph
from thinkedit.agent.settings import SettingsInput
from thinkedit.agent.state import RunInput, RunOutput

graph = build_graph(input_schema=RunInput, output_schema=RunOutput, context_schema=SettingsInput, confine=True)
