"""Fixtures and hooks for the TUI tests (the helpers live in tui_app_helpers, re-exported here)."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # also when another folder loads this file by path
    sys.path.insert(0, _HERE)

from tui_app_helpers import (  # noqa: E402
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
