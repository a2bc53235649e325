"""Benchmark evaluation: read benchmarks, run them with and without the loop, judge, summarise."""
