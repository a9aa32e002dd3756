"""Benchmarks: scripts writing JSON results into bench/results/ (never timed assertions in tests)."""
