"""SVG snapshots: a finished reply in the token view for each stop reason, greedy panel, a validation error.

Deterministic: fixed terminal size, the FakeEngine's scripted timings, cursor blink off.
Update with ``pytest tests/tui/test_snapshots.py --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.fakes import FakeEngine
from tests.tui.tui_app_helpers import (
    make_app,
    no_blink,
    reply_done,
    send,
    send_and_hold,
    wait_for,
    wait_ready,
)
from tui.app import TokendialApp
from tui.engine.events import StopKind
from tui.widgets.sampling_panel import StepInput

SNAP_SIZE = (120, 34)
Compare = Callable[..., bool]


async def _finished_in_token_view(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, TokendialApp)
    await wait_ready(pilot)
    await send(pilot, "Who are you?")
    engine = app.engine_worker.engine
    if isinstance(engine, FakeEngine) and engine.hold_at is not None:
        await wait_for(pilot, engine.reached_hold.is_set, "engine holding")
        await pilot.press("escape")
    await reply_done(pilot)
    await pilot.press("ctrl+t")
    await no_blink(pilot)


@pytest.mark.parametrize(
    ("engine", "sampling"),
    [
        (FakeEngine(), {}),
        (FakeEngine(end=StopKind.MAX_TOKENS), {"max_new_tokens": 10}),
        (FakeEngine(), {"stop": (" model",)}),
        (FakeEngine(end=StopKind.MAX_TOKENS, n_ctx=40), {}),
        (FakeEngine(hold_at=6), {}),
        (FakeEngine(end=StopKind.ERROR, error_message="llama_decode returned 1"), {}),
    ],
    ids=["eos", "max_tokens", "stop_string", "context_full", "cancelled", "error"],
)
def test_token_view_stop_badge(
    snap_compare: Compare, tmp_path: Path, engine: FakeEngine, sampling: dict[str, Any]
) -> None:
    app = make_app(engine, tmp_path, **sampling)
    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=_finished_in_token_view)


def test_token_view_probability_colours_and_param_change(snap_compare: Compare, tmp_path: Path) -> None:
    engine = FakeEngine(hold_at=4)

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, TokendialApp)
        await wait_ready(pilot)
        await send_and_hold(pilot, engine, "Who are you?", "engine holding")
        field = app.panel.query_one("#field-temperature", StepInput)
        field.focus()
        await pilot.press("pageup")
        await wait_for(pilot, lambda: app.live.version == 1, "params applied")
        engine.release()
        await reply_done(pilot)
        await pilot.press("ctrl+t", "ctrl+o", "right", "right")
        app.clear_notifications()
        await no_blink(pilot)

    app = make_app(engine, tmp_path)
    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=run_before)


def test_panel_greedy_mode(snap_compare: Compare, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        await pilot.press("ctrl+g")
        await no_blink(pilot)

    app = make_app(FakeEngine(), tmp_path)
    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=run_before)


def test_panel_validation_error(snap_compare: Compare, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, TokendialApp)
        await wait_ready(pilot)
        field = app.panel.query_one("#field-top_p", StepInput)
        field.focus()
        field.value = "1.5"
        await pilot.press("enter")
        await no_blink(pilot)

    app = make_app(FakeEngine(), tmp_path)
    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=run_before)


def test_chat_with_small_badge(snap_compare: Compare, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        await send(pilot, "Who are you?")
        await reply_done(pilot)
        await no_blink(pilot)

    app = make_app(FakeEngine(end=StopKind.MAX_TOKENS), tmp_path, max_new_tokens=10)
    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=run_before)


def test_long_chat_folded_behind_the_bar(snap_compare: Compare, tmp_path: Path) -> None:
    """Five exchanges: the last 6 messages shown, the 4 before them folded behind the bar at the top."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        for turn in range(5):
            await send(pilot, f"Question {turn + 1}")
            await reply_done(pilot)
        app = pilot.app
        assert isinstance(app, TokendialApp)
        app.chat_view.scroll_home(animate=False, immediate=True)
        await no_blink(pilot)

    app = make_app(FakeEngine(), tmp_path)
    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=run_before)
