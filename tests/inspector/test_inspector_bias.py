"""Ban and boost from the inspector (Pilot, FakeEngine): the live parameters, the panel's bias list."""

from __future__ import annotations

import math
from pathlib import Path

from textual.widgets import Input

from tests.inspector.inspector_fakes import LECTURE_SCRIPT, BranchingFake
from tests.inspector.inspector_helpers import SAMPLE, SIZE, inspector_of, make_app, replied


async def test_x_bans_and_plus_minus_move_the_bias(tmp_path: Path) -> None:
    app = make_app(BranchingFake(script=LECTURE_SCRIPT), tmp_path, **SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        await replied(pilot)
        await pilot.press("ctrl+t", "i")
        inspector = inspector_of(app)
        await pilot.press("i")  # into the inspector's table
        await pilot.pause()
        row = inspector.highlighted_row()
        assert row is not None
        await pilot.press("x")
        await pilot.pause()
        assert app.conversation.live.params.logit_bias == {row.token_id: -math.inf}
        panel = app.views.panel
        assert panel.params.logit_bias == {row.token_id: -math.inf}
        assert panel.query_one("#field-logit_bias", Input).value == f"{row.token_id}=-inf"
        assert "banned" in str(panel.query_one("#bias-list").render())
        await pilot.press("down")
        await pilot.pause()
        other = inspector.highlighted_row()
        assert other is not None and other.token_id != row.token_id
        await pilot.press("plus", "plus", "minus")
        await pilot.pause()
        assert app.conversation.live.params.logit_bias == {row.token_id: -math.inf, other.token_id: 2.0}
        assert any("banned" in str(n.message) for n in app._notifications)
