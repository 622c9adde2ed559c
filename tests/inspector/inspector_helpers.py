"""Helpers for the inspector's app tests."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from tests.tui.tui_app_helpers import make_app, no_blink, reply_done, send, wait_for, wait_ready
from tui.app import TokendialApp
from tui.widgets.inspector import Inspector

SIZE = (130, 40)
SAMPLE: dict[str, Any] = {
    "temperature": 0.7,
    "top_k": 4,
    "top_p": 0.9,
    "min_p": 0.05,
    "repeat_penalty": 1.0,
    "seed": 7,
}
"""The sampling the inspector's app tests use (make_app keywords): the lecture's top-k 4, top-p 0.9."""

# The TUI tests' helpers, re-exported for the inspector tests.
__all__ = ["make_app", "no_blink", "reply_done", "send", "wait_for", "wait_ready"]


async def replied(pilot: Pilot[Any], prompt: str = "What did you have?") -> TokendialApp:
    """Wait for the model, send ``prompt``, wait for the reply to finish."""
    app = pilot.app
    assert isinstance(app, TokendialApp)
    await wait_ready(pilot)
    await send(pilot, prompt)
    await reply_done(pilot)
    return app


def inspector_of(app: TokendialApp) -> Inspector:
    """The mounted inspector."""
    inspector = app.inspector
    assert inspector is not None
    return inspector


def cell_text(inspector: Inspector, row: int, column: str) -> str:
    """The plain text of one cell of the candidate table."""
    table = inspector.table
    value = table.get_cell(str(row), column)
    return str(getattr(value, "plain", value))
