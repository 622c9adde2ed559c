"""Helpers for the inspector's app tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from textual.pilot import Pilot

from tui.app import TokendialApp
from tui.widgets.inspector import Inspector


def _load_tui_helpers() -> ModuleType:
    """tests/tui/conftest.py as a plain module (its helpers; importing it registers no fixtures)."""
    path = Path(__file__).resolve().parents[1] / "tui" / "conftest.py"
    spec = importlib.util.spec_from_file_location("tokendial_tui_test_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tui_helpers = _load_tui_helpers()
make_app = tui_helpers.make_app
wait_for = tui_helpers.wait_for
wait_ready = tui_helpers.wait_ready
send = tui_helpers.send
reply_done = tui_helpers.reply_done
no_blink = tui_helpers.no_blink
SIZE = (130, 40)


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
