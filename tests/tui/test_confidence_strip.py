"""The confidence strip over the token view: always there, follows a streaming reply, click selects."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest
from rich.text import Text
from textual.widget import Widget

from tests.fakes import FakeEngine
from tests.tui.tui_app_helpers import SIZE, make_app, reply_done, send_and_hold, wait_for, wait_ready
from tui.engine import whatif
from tui.engine.events import TokenEvent
from tui.screens.main import TokenPane
from tui.widgets import confidence_strip
from tui.widgets.confidence_strip import ConfidenceStrip, sparkline


def _event(index: int, p_raw: float) -> TokenEvent:
    return TokenEvent(index, index, f"t{index}", f"t{index}", p_raw, p_raw, (), 1.0, 0, 1.0)


def test_extend_appends_only_the_new_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    original = whatif.confidence_values  # what the strip's module imported

    def counting(events: Sequence[TokenEvent], *, by: str = "p") -> list[float]:
        seen.append(len(events))
        return original(events, by=by)

    monkeypatch.setattr(confidence_strip, "confidence_values", counting)
    strip = ConfidenceStrip()
    events = [_event(0, 0.9), _event(1, 0.4), _event(2, 0.7)]
    strip.show(events, None)
    assert strip.values == [0.9, 0.4, 0.7] and strip.least == 1
    events += [_event(3, math.nan), _event(4, 0.4), _event(5, 0.1)]
    strip.extend(events)
    assert seen == [3, 3]  # once for the reply shown, then only the three new tokens
    assert strip.values[:3] == [0.9, 0.4, 0.7] and math.isnan(strip.values[3])
    assert strip.least == 5  # the running minimum (NaN skipped)
    events.append(_event(6, 0.1))
    strip.extend(events)
    assert strip.least == 5  # the first on ties
    other = [_event(0, 0.2)]
    strip.extend(other)  # another reply: shown from scratch
    assert strip.values == [0.2] and strip.least == 0 and strip.events is other


def test_cells_are_appended_while_the_reply_fits_then_bucketed() -> None:
    strip = ConfidenceStrip()
    events = [_event(i, p) for i, p in enumerate((0.9, 0.1, 0.5, 0.3))]
    strip.show(events, None)
    strip._line_cells(3)  # wider than the strip: 3 buckets, each its least sure token
    expected, ranges = sparkline(strip.values, 3, None)
    assert [c for c, _ in strip._cells] == list(expected.plain) and strip._ranges == ranges
    strip._line_cells(10)
    first_cells = list(strip._cells)
    events.append(_event(4, 0.95))
    strip.extend(events)
    strip._line_cells(10)
    assert strip._cells[:4] == first_cells and len(strip._cells) == 5  # appended, not rebuilt
    assert "".join(c for c, _ in strip._cells) == sparkline(strip.values, 10, None)[0].plain


async def test_strip_over_the_token_view_follows_the_stream_and_selects(tmp_path: Path) -> None:
    engine = FakeEngine(hold_at=4)
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send_and_hold(pilot, engine, "Who are you?", "engine holding")
        await pilot.press("ctrl+t")
        view = app.token_view
        strip = app.screen.query_one(ConfidenceStrip)
        assert isinstance(strip.parent, TokenPane) and view.strip is strip
        assert not app.inspector_open and strip.display and strip.region.height >= 2
        assert strip.region.y < view.region.y  # docked over the tokens
        # The worker holds its batch while the engine holds: the first token is out at once.
        await wait_for(pilot, lambda: len(strip.values) >= 1, "streamed tokens in the strip")
        values = strip.values
        streaming = view.record
        assert streaming is not None
        assert values == [e.p_raw for e in streaming.events][: len(values)]
        assert values[0] == pytest.approx(0.95)
        least = min(range(len(values)), key=lambda i: (values[i], i))
        event = streaming.events[least]
        assert strip.least == least and f"#{least} '{event.text}' p={event.p_raw:.3f}" in str(strip.render())
        engine.release()
        await reply_done(pilot)
        record = view.record
        assert record is not None
        assert strip.values == [e.p_raw for e in record.events] and len(strip.values) == 13
        assert strip.values is values  # the same list, appended to as tokens streamed
        # " a" (#4) and " me" (#10) are both scripted at 0.08; the fake's float32 maths decides
        assert strip.least == min(range(13), key=lambda i: (strip.values[i], i)) in (4, 10)
        rendered = strip.render()
        assert isinstance(rendered, Text)
        sparkline_row = rendered.plain.splitlines()[0]
        assert len(sparkline_row) == 13 and sparkline_row[4] == "▁" and sparkline_row[0] == "█"
        await pilot.click(strip, offset=(1 + 7, 0))  # padding 1, then token 7
        await pilot.pause()
        assert view.cursor == 7 and strip.cursor == 7 and app.focused is view
        assert isinstance(view.parent, Widget)
        assert "token 8/13" in str(view.parent.border_subtitle)
        await pilot.press("u")
        await pilot.pause()
        assert view.cursor == strip.least == strip.cursor and not app.inspector_open
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert strip.values == [] and strip.least is None
        assert "shows here as the reply streams" in str(strip.render())
