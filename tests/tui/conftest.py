"""Fixtures and hooks for the TUI tests (the helpers live in tui_app_helpers, re-exported here)."""

from __future__ import annotations

from tests.tui.tui_app_helpers import (
    SIZE,
    fake,
    make_app,
    make_settings,
    no_blink,
    pytest_pyfunc_call,
    reply_done,
    send,
    send_and_hold,
    wait_for,
    wait_ready,
)

__all__ = [
    "SIZE",
    "fake",
    "make_app",
    "make_settings",
    "no_blink",
    "pytest_pyfunc_call",
    "reply_done",
    "send",
    "send_and_hold",
    "wait_for",
    "wait_ready",
]
