"""Benchmarks (`make bench`): ratios measured side by side in one run, written to
docs/benchmarks.md. Separate from the tests: nothing here asserts a wall-clock limit."""
