"""tokendial benchmarks (not part of the normal test run). Run: ``python -m tests.bench``."""
