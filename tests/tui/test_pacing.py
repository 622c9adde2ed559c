"""RedrawPacer: redraws slow down while the UI thread is over its CPU budget, and speed up again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import DEFAULT_SCRIPT, FakeEngine
from tests.tui.tui_app_helpers import SIZE, make_app, reply_done, send, wait_ready
from tui.pacing import RedrawPacer


class Clocks:
    """A wall clock and a UI-thread CPU clock moved by hand."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 5.0

    def step(self, wall: float, share: float) -> None:
        """``wall`` seconds pass, the UI thread busy ``share`` of them."""
        self.wall += wall
        self.cpu += wall * share


def pacer_with(clocks: Clocks) -> RedrawPacer:
    return RedrawPacer(
        min_s=0.1, max_s=0.25, budget=0.08, cpu_clock=lambda: clocks.cpu, clock=lambda: clocks.wall
    )


def test_cheap_redraws_stay_at_the_fastest_rate() -> None:
    clocks = Clocks()
    pacer = pacer_with(clocks)
    for _ in range(20):
        pacer.drawn()
        clocks.step(pacer.interval, 0.02)
    assert pacer.interval == pytest.approx(0.1)
    assert pacer.last_share == pytest.approx(0.02)


def test_costly_redraws_slow_down_to_the_limit_then_recover() -> None:
    clocks = Clocks()
    pacer = pacer_with(clocks)
    intervals = []
    for _ in range(10):
        pacer.drawn()
        intervals.append(pacer.interval)
        clocks.step(pacer.interval, 0.15)
    assert intervals[0] == pytest.approx(0.1)  # the first redraw has nothing to compare with
    assert intervals == sorted(intervals)
    assert pacer.interval == pytest.approx(0.25)  # never slower than max_s
    for _ in range(10):
        pacer.drawn()
        clocks.step(pacer.interval, 0.01)
    assert pacer.interval == pytest.approx(0.1)


def test_a_share_near_the_budget_keeps_the_rate() -> None:
    clocks = Clocks()
    pacer = pacer_with(clocks)
    pacer.drawn()
    clocks.step(0.1, 0.15)
    pacer.drawn()
    slowed = pacer.interval
    assert slowed > 0.1
    for _ in range(5):
        clocks.step(pacer.interval, 0.06)  # under budget, above 60% of it: hold
        pacer.drawn()
    assert pacer.interval == pytest.approx(slowed)


def test_a_new_reply_does_not_count_the_time_between_replies() -> None:
    clocks = Clocks()
    pacer = pacer_with(clocks)
    pacer.drawn()
    clocks.step(5.0, 0.9)  # sending the prompt, saving the chat: busy, but not redraws
    pacer.start()
    pacer.drawn()
    assert pacer.interval == pytest.approx(0.1)
    assert pacer.last_share is None


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="min_s"):
        RedrawPacer(min_s=0.3, max_s=0.2)


async def test_the_app_slows_redraws_and_token_messages_when_drawing_is_costly(tmp_path: Path) -> None:
    """A pacer whose budget every redraw exceeds: redraws slow to max_s, and the engine thread's
    messages follow (fewer wake-ups of the UI thread); no token is lost or late in the records."""
    engine = FakeEngine(script=DEFAULT_SCRIPT * 6, delay_s=0.02)
    app = make_app(engine, tmp_path)
    app.replies.pacer = RedrawPacer(min_s=0.1, max_s=0.25, budget=0.0)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        assert app.engine_worker.batch_s == pytest.approx(0.03)
        await send(pilot, "go")
        await reply_done(pilot)
        assert app.pacer.interval == pytest.approx(0.25)
        assert app.engine_worker.batch_s == pytest.approx(0.075)
        record = app.records[1]
        assert len(record.events) == len(engine.script)
        assert app.history[-1].content == "".join(DEFAULT_SCRIPT * 6)
