"""The soak run (not part of the default test run): ``python -m tests.soak.run``."""
