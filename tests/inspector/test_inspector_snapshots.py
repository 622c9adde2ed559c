"""Snapshots of the inspector (FakeEngine with fixed candidates: the lecture figure's cake, donut, banana)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from inspector_fakes import LECTURE_SCRIPT, BranchingFake
from inspector_helpers import SIZE, inspector_of, make_app, no_blink, replied
from textual.pilot import Pilot

from tui.app import TokendialApp
from tui.widgets.inspector import WhatIfInput

Compare = Any
SAMPLE = {"temperature": 0.7, "top_k": 4, "top_p": 0.9, "min_p": 0.05, "repeat_penalty": 1.0, "seed": 7}


def _on_cake(whatif: dict[str, str] | None = None) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = await replied(pilot)
        assert isinstance(app, TokendialApp)
        await pilot.press("ctrl+t", "i", *["right"] * 5)
        inspector = inspector_of(app)
        for name, value in (whatif or {}).items():
            inspector.query_one(f"#whatif-{name}", WhatIfInput).value = value
        inspector.table.focus()
        await pilot.pause()
        app.clear_notifications()
        await no_blink(pilot)

    return run_before


@pytest.mark.parametrize(
    "sampling",
    [{"mode": "greedy", "repeat_penalty": 1.0}, SAMPLE],
    ids=["greedy", "sampling"],
)
def test_inspector(snap_compare: Compare, tmp_path: Path, sampling: dict[str, Any]) -> None:
    app = make_app(BranchingFake(script=LECTURE_SCRIPT), tmp_path, **sampling)
    assert snap_compare(app, terminal_size=SIZE, run_before=_on_cake())


def test_inspector_what_if(snap_compare: Compare, tmp_path: Path) -> None:
    app = make_app(BranchingFake(script=LECTURE_SCRIPT), tmp_path, **SAMPLE)
    assert snap_compare(app, terminal_size=SIZE, run_before=_on_cake({"temperature": "1.5", "top_k": "0"}))
