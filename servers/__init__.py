"""Processes: the CLI, the editor server, the thinker server launcher and the MCP server."""
