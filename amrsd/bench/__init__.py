"""Benchmarks, run as python -m amrsd.bench.<name>; each prints ratios against a reference."""
