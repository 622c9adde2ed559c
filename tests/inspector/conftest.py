"""Inspector tests reuse the TUI tests' helpers (see inspector_helpers), including the async runner."""

from __future__ import annotations

from tests.tui.tui_app_helpers import pytest_pyfunc_call

__all__ = ["pytest_pyfunc_call"]
"""Run ``async def`` tests in a fresh event loop (the TUI tests' hook)."""
