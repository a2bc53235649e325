"""Generators of the reference pages: each reads the code and writes Markdown (run by ``hooks.py``)."""
