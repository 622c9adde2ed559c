"""Branching from an earlier reply (not the last): shown with shift+←, asked first, later turns removed."""

from __future__ import annotations

from pathlib import Path

from tests.inspector.inspector_fakes import LECTURE_SCRIPT, BranchingFake
from tests.inspector.inspector_helpers import SAMPLE, SIZE, inspector_of, make_app, replied, reply_done
from tui.screens.confirm import ConfirmScreen
from tui.widgets.chat_view import AssistantMessage, UserMessage

ORIGINAL = "I had a slice of cake."
DONUT = "I had a slice of donut with cream."


async def test_branch_from_an_earlier_reply_asks_then_drops_the_later_turns(tmp_path: Path) -> None:
    engine = BranchingFake(script=LECTURE_SCRIPT)
    app = make_app(engine, tmp_path, **SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        await replied(pilot, "What did you have?")
        first = app.token_view.record
        await replied(pilot, "And then?")
        second = app.token_view.record
        assert first is not None and second is not None and first is not second
        await pilot.press("ctrl+t", "shift+left")  # the tokens of the first reply
        await pilot.pause()
        assert app.token_view.record is first
        await pilot.press("shift+left")  # already the first: stays
        await pilot.pause()
        assert app.token_view.record is first
        await pilot.press("i", *["right"] * 5, "i", "down")  # " donut" instead of " cake"
        inspector = inspector_of(app)
        assert inspector.reply_id == first.reply_id
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "2 messages after this reply will be removed" in str(app.screen.detail)
        await pilot.press("n")  # keep the chat: nothing changes
        await pilot.pause()
        assert len(app.history) == 4 and len(app.chat_view.query(AssistantMessage)) == 2
        inspector.table.focus()
        await pilot.press("b", "y")
        await reply_done(pilot)
        # The later turns are gone; the first reply continued from " donut".
        assert [m.role for m in app.history] == ["user", "assistant"]
        assert app.history[-1].content == DONUT
        assert len(app.chat_view.query(UserMessage)) == 1
        shown = app.chat_view.query(AssistantMessage)
        assert len(shown) == 1 and "branch 2/2" in str(shown.last().border_title)
        assert second.reply_id not in app.records
        branch = app.token_view.record
        assert branch is not None and branch.events[5].text == " donut"
        assert inspector.reply_id == branch.reply_id and inspector.event is branch.events[5]
        assert "picked by you" in str(inspector.query_one("#inspector-head").render())
        assert engine.continued[-1] == tuple(e.token_id for e in branch.events[:6])
        # The chat store agrees: two messages, the old reply kept as a branch, not the later turns.
        store, chat_id = app.chat_session.store, app.chat_session.chat_id
        assert chat_id is not None
        saved = store.load_chat(chat_id).messages
        assert [m.text for m in saved] == ["What did you have?", DONUT]
        assert [s.text for s in store.load_siblings(saved[-1].id)] == [ORIGINAL]
        await pilot.press("escape", "left_square_bracket")  # [ switches back to the old reply
        await pilot.pause()
        assert app.chat_view.query(AssistantMessage).last().record is first
        assert app.history[-1].content == ORIGINAL and len(app.history) == 2
