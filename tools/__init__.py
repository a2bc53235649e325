"""What the loop's nodes call: editors, thinkers, the artifact store and model profiles.

Nothing here imports LangGraph or MCP; heavy libraries (torch, diffusers, transformers) are
imported lazily inside the backends that need them.
"""
