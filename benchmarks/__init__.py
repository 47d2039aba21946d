"""Benchmarks: one command each, printing figures (they never assert on wall-clock times)."""
