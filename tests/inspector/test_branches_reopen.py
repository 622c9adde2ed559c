"""Branch siblings survive a reopen: saved with the chat, restored when it is opened again."""

from __future__ import annotations

from pathlib import Path

from tests.inspector.inspector_fakes import LECTURE_SCRIPT, BranchingFake
from tests.inspector.inspector_helpers import SAMPLE, SIZE, make_app, replied, reply_done, wait_ready
from tui.app import TokendialApp
from tui.widgets.chat_view import AssistantMessage

ORIGINAL = "I had a slice of cake."
DONUT = "I had a slice of donut with cream."


def _shown(app: TokendialApp) -> AssistantMessage:
    return app.chat_view.query(AssistantMessage).last()


async def test_siblings_are_saved_and_come_back_after_a_restart(tmp_path: Path) -> None:
    app = make_app(BranchingFake(script=LECTURE_SCRIPT), tmp_path, **SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        await replied(pilot)
        await pilot.press("ctrl+t", "i", *["right"] * 5, "i", "down", "b")  # " donut" instead of " cake"
        await reply_done(pilot)
        branch = app.token_view.record
        assert branch is not None and branch.done is not None and branch.done.text == DONUT
        store, chat_id = app.chat_session.store, app.chat_session.chat_id
        assert chat_id is not None
        message = store.load_chat(chat_id).messages[-1]
        assert (message.text, message.sibling_ordinal, message.sibling_count, message.branched_at) == (
            DONUT,
            1,
            2,
            5,
        )
        (original,) = store.load_siblings(message.id)
        assert (original.ordinal, original.text, original.branched_at) == (0, ORIGINAL, None)
        await pilot.press("escape", "left_square_bracket")  # show the original: it is saved as the message
        await pilot.pause()
        message = store.load_chat(chat_id).messages[-1]
        assert (message.text, message.sibling_ordinal, message.sibling_count) == (ORIGINAL, 0, 2)
        (saved_branch,) = store.load_siblings(message.id)
        assert saved_branch.text == DONUT and saved_branch.branched_at == 5
        assert saved_branch.events is not None
        assert [e.token_id for e in saved_branch.events] == [e.token_id for e in branch.events]
        branch_ids = [e.token_id for e in branch.events]

    # A restart: a new app on the same data dir opens the chat.
    engine = BranchingFake(script=LECTURE_SCRIPT)
    app = make_app(engine, tmp_path, **SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        assert await app.open_stored_chat(chat_id)
        await pilot.pause()
        shown = _shown(app)
        assert shown.record.done is not None and shown.record.done.text == ORIGINAL
        assert "branch 1/2" in str(shown.border_title)
        siblings = app.branches.set_of(shown.record.reply_id)
        assert siblings is not None and [r.done.text for r in siblings.records if r.done] == [ORIGINAL, DONUT]
        await pilot.press("ctrl+t", "right_square_bracket")  # ] switches to the restored branch
        await pilot.pause()
        shown = _shown(app)
        assert shown.record.done is not None and shown.record.done.text == DONUT
        assert "branch 2/2" in str(shown.border_title)
        assert [e.token_id for e in shown.record.events] == branch_ids
        assert app.token_view.record is shown.record and app.history[-1].content == DONUT
        assert siblings.branched_at[shown.record.reply_id] == 5
        # Branch once more from the restored reply: three continuations, all saved.
        await pilot.press("i", "right", "i", "down", "b")
        await reply_done(pilot)
        assert len(siblings.records) == 3 and "branch 3/3" in str(_shown(app).border_title)
        store = app.chat_session.store
        message = store.load_chat(chat_id).messages[-1]
        assert (message.sibling_ordinal, message.sibling_count, message.branched_at) == (2, 3, 1)
        assert [(s.ordinal, s.text) for s in store.load_siblings(message.id)] == [(0, ORIGINAL), (1, DONUT)]
        # A new chat forgets them; opening the chat again brings all three back.
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert not app.branches.sets
        assert await app.open_stored_chat(chat_id)
        await pilot.pause()
        await pilot.pause()  # the new chat's message has been handled: the restored branches stay
        shown = _shown(app)
        siblings = app.branches.set_of(shown.record.reply_id)
        assert siblings is not None and len(siblings.records) == 3 and siblings.active == 2
        assert "branch 3/3" in str(shown.border_title)
