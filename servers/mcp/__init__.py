"""The MCP server: the Think-while-Edit loop as tools for agents (needs the ``mcp`` extra).

Only the modules that serve import the ``mcp`` SDK; ``cli`` and ``client_config`` do not, so the
command line works without the extra.
"""
