"""Benchmarks that print tables and write docs/benchmarks.md: `python -m bench <name> [--quick]`."""
