"""A long chat: only the last messages are displayed; the earlier ones fold behind a bar.

Every displayed message costs each redraw of a streaming reply a layout pass over its widgets,
so a long chat made replies stream ~20% slower on 2 cores (see the README's Benchmarks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import events
from textual.pilot import Pilot
from textual.widget import Widget

from tests.fakes import FakeEngine
from tests.tui.tui_app_helpers import SIZE, make_app, reply_done, send, wait_for, wait_ready
from tui.app import TokendialApp
from tui.widgets.chat_view import SHOWN_MESSAGES, UNFOLD_STEP, AssistantMessage, EarlierBar

PARAGRAPH = ("Once", " upon", " a", " time", " there", " was", " a", " dragon", ".", "\n\n")
"""A script of a few short paragraphs: a reply several lines tall."""


def shown(app: TokendialApp) -> list[Widget]:
    """The messages displayed in the transcript."""
    return [message for message in app.chat_view.messages if message.display]


def bar(app: TokendialApp) -> EarlierBar:
    return app.chat_view.query_one(EarlierBar)


async def chat_of(pilot: Pilot[Any], turns: int) -> TokendialApp:
    app = pilot.app
    assert isinstance(app, TokendialApp)
    await wait_ready(pilot)
    for turn in range(turns):
        await send(pilot, f"prompt {turn}")
        await reply_done(pilot)
    return app


async def test_a_long_chat_shows_its_last_messages_and_a_bar_for_the_rest(tmp_path: Path) -> None:
    app = make_app(FakeEngine(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await chat_of(pilot, 2)
        assert len(shown(app)) == 4
        assert not bar(app).display  # nothing folded yet
        await chat_of(pilot, 4)  # 12 messages now
        assert len(app.chat_view.messages) == 12
        assert len(shown(app)) == SHOWN_MESSAGES
        assert shown(app) == app.chat_view.messages[-SHOWN_MESSAGES:]  # the last ones, in order
        assert app.chat_view.folded == 12 - SHOWN_MESSAGES
        assert bar(app).display
        assert f"▲ {12 - SHOWN_MESSAGES} earlier messages" in str(bar(app).render())
        # everything is still in the chat: the model saw every turn, the token view can show any reply
        assert len(app.history) == 12
        assert len(list(app.chat_view.query(AssistantMessage))) == 6

        await pilot.click(EarlierBar)
        await pilot.pause()
        assert len(shown(app)) == 12
        assert not bar(app).display

        await send(pilot, "one more")  # a new reply folds again
        await reply_done(pilot)
        assert len(shown(app)) == SHOWN_MESSAGES
        assert app.chat_view.folded == 14 - SHOWN_MESSAGES

        await pilot.press("ctrl+n")  # a new chat has nothing to fold
        await pilot.pause()
        assert not bar(app).display
        assert app.chat_view.folded == 0


def wheel_up(chat: Widget) -> events.MouseScrollUp:
    return events.MouseScrollUp(chat, 5, 5, 0, -1, 0, False, False, False)


async def test_scrolling_up_at_the_top_shows_more_and_keeps_the_view_in_place(tmp_path: Path) -> None:
    app = make_app(FakeEngine(script=PARAGRAPH * 3, n_ctx=8192), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await chat_of(pilot, 10)  # 20 messages, each reply ~8 lines: taller than the screen
        chat = app.chat_view
        folded = 20 - SHOWN_MESSAGES
        assert chat.folded == folded
        chat.scroll_to(y=0, animate=False, immediate=True)  # a scroll to the top by itself unfolds nothing
        await pilot.pause()
        assert chat.folded == folded
        first = shown(app)[0]
        chat.post_message(wheel_up(chat))  # the wheel, at the top
        await wait_for(pilot, lambda: chat.folded == folded - UNFOLD_STEP, "more shown")
        await pilot.pause()
        await pilot.pause()
        # the message that was first is where it was (at the top), not pushed down by the new ones
        assert first.virtual_region.y - chat.scroll_y <= bar(app).outer_size.height + 1
        assert chat.scroll_y > 0
        assert len(shown(app)) == SHOWN_MESSAGES + UNFOLD_STEP
        chat.post_message(wheel_up(chat))  # not at the top: the wheel only scrolls
        await pilot.pause()
        assert chat.folded == folded - UNFOLD_STEP


async def test_the_keyboard_shows_more(tmp_path: Path) -> None:
    app = make_app(FakeEngine(script=PARAGRAPH * 3, n_ctx=8192), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await chat_of(pilot, 12)  # 24 messages: 18 folded
        chat = app.chat_view
        await pilot.press("shift+tab")  # from the prompt back to the bar: focusing it unfolds nothing
        await pilot.pause()
        assert app.focused is bar(app)
        assert chat.folded == 24 - SHOWN_MESSAGES
        await pilot.press("enter")
        await pilot.pause()
        assert chat.folded == 24 - SHOWN_MESSAGES - UNFOLD_STEP
        chat.focus()
        await pilot.press("home")  # to the top
        await pilot.pause(0.5)
        assert chat.scroll_y == 0
        assert chat.folded == 24 - SHOWN_MESSAGES - UNFOLD_STEP
        await pilot.press("home")  # at the top: the rest
        await pilot.pause()
        assert chat.folded == 0
        assert not bar(app).display
        assert len(shown(app)) == 24


async def test_a_reopened_long_chat_is_folded_too(tmp_path: Path) -> None:
    app = make_app(FakeEngine(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await chat_of(pilot, 5)
        chat_id = app.chat_session.chat_id
        assert chat_id is not None
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert await app.open_stored_chat(chat_id)
        await pilot.pause()
        assert len(app.chat_view.messages) == 10
        assert len(shown(app)) == SHOWN_MESSAGES
        assert bar(app).display
        assert app.records  # every reply is loaded (token view, branches)
        assert len(app.records) == 5
