"""Measuring helpers the benchmarks in bench/ run on and the tests check: spreads, fresh photos, the bare graph, reports.

The benchmark scripts (``bench/*.py``) import these; tests import them too, never ``bench``.
"""
