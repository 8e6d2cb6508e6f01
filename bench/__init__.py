"""Benchmarks of Platform Guard on this machine; each is a module run with `python -m bench.<name>`.

Performance targets live here, never in timed unit tests. How to run each one: bench/README.md;
the figures measured so far: docs/benchmarks.md.
"""
