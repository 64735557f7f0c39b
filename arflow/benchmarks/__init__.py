"""Benchmarks for ``make bench``: one module per topic, each with ``run() -> list[str]`` of result lines."""
