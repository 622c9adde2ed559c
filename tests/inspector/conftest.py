"""Inspector tests reuse the TUI tests' helpers (see inspector_helpers), including the async runner."""

from __future__ import annotations

from inspector_helpers import tui_helpers

pytest_pyfunc_call = tui_helpers.pytest_pyfunc_call
"""Run ``async def`` tests in a fresh event loop (the TUI tests' hook)."""
