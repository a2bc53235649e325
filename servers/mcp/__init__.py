"""The MCP server: the Think-while-Edit loop as tools for agents (needs the ``mcp`` extra).

Only the modules that serve import the ``mcp`` SDK; ``cli`` and ``client_config`` do not, so the
command line works without the extra.
"""

#: Largest image a client may pass inline (data: URI) or by URL, decoded, in MiB: ``--max-image-mb``'s default.
DEFAULT_MAX_IMAGE_MB = 8
#: The same limit in bytes: ``ServerConfig``'s and ``ImageResolver``'s default.
DEFAULT_MAX_IMAGE_BYTES = DEFAULT_MAX_IMAGE_MB * 1024 * 1024
