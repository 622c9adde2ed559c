"""In the app: a reply's thinking section folds (live while the model thinks), f9 opens it, the
token view keeps every token, the stop badge is the reply's own; hide_thinking leaves it out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from settings.config import Settings
from settings.sampling import SamplingParams
from tests.fakes import FakeEngine
from tui.app import TokendialApp
from tui.core.state import ModelState
from tui.engine.events import StopKind
from tui.widgets.chat_view import AssistantMessage

THINKING_SCRIPT = (
    "<think>",
    "\n",
    "The",
    " user",
    " greets",
    " me",
    ".",
    "\n",
    "</think>",
    "\n\n",
    "Hello",
    "!",
)
"""A reasoning model's reply: 9 tokens of thinking (markers included), then the answer."""
SNAP_SIZE = (110, 44)


def make_thinking_app(tmp_path: Path, engine: FakeEngine, **settings: Any) -> TokendialApp:
    """The app on ``engine`` with the settings of a test."""
    config = Settings(model_path=tmp_path / "FakeLM-135M.Q4_1.gguf", data_dir=tmp_path / "data", **settings)
    return TokendialApp(config, engine_factory=lambda _config: engine, config_path=tmp_path / "c.toml")


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool], what: str) -> None:
    """Let the app run until ``condition()`` holds."""
    for _ in range(500):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for: {what}")


async def send(pilot: Pilot[Any], text: str) -> AssistantMessage:
    """Send ``text`` once the model is loaded; the reply's message widget."""
    app = pilot.app
    assert isinstance(app, TokendialApp)
    await wait_for(pilot, lambda: app.model_state is ModelState.READY, "model loaded")
    assert await app.replies.send_prompt(text)
    return app.query(AssistantMessage).last()


async def finished(pilot: Pilot[Any]) -> None:
    """Wait until the reply has ended."""
    app = pilot.app
    assert isinstance(app, TokendialApp)
    await wait_for(pilot, lambda: not app.replies.busy, "reply finished")
    await pilot.pause()


async def test_the_section_grows_while_thinking_then_folds(tmp_path: Path) -> None:
    engine = FakeEngine(script=THINKING_SCRIPT, hold_at=5)
    app = make_thinking_app(tmp_path, engine)
    async with app.run_test(size=(120, 40)) as pilot:
        message = await send(pilot, "Hi")
        await wait_for(pilot, engine.reached_hold.is_set, "engine holding in the thinking")
        section = message.thinking
        # The worker posts the first token at once, the rest in ~30 ms batches: 1 to 5 are drawn.
        await wait_for(pilot, lambda: section.display, "thinking drawn live")
        assert section.tokens in range(1, 6)
        assert str(section.render()) == f"▸ thinking · {section.tokens} tokens (still thinking…)"
        assert message.markdown.source == ""  # no answer yet: nothing of the thinking leaks into it
        engine.release()
        await finished(pilot)

        assert str(section.render()) == "▸ thinking · 9 tokens"
        assert message.markdown.source == "Hello!"
        record = message.record
        assert record.done is not None and record.done.stop.kind is StopKind.EOS
        assert record.done.text == "".join(THINKING_SCRIPT)  # the reply itself keeps its thinking
        shown = app.views.token_view.record
        assert shown is record and [event.text for event in shown.events] == list(THINKING_SCRIPT)
        assert message.has_class("stop-eos")

        await pilot.press("f9")  # from the prompt box (f6 and f7 are its own keys)
        await pilot.pause()
        assert section.opened and "The user greets me." in str(section.render())
        await pilot.press("f9")
        await pilot.pause()
        assert not section.opened and "greets" not in str(section.render())


async def test_hide_thinking_shows_the_answer_only(tmp_path: Path) -> None:
    engine = FakeEngine(script=THINKING_SCRIPT)
    app = make_thinking_app(tmp_path, engine, hide_thinking=True)
    async with app.run_test(size=(120, 40)) as pilot:
        message = await send(pilot, "Hi")
        await finished(pilot)
        assert not message.thinking.display and message.thinking.tokens == 9
        assert message.markdown.source == "Hello!"
        shown = app.views.token_view.record
        assert shown is not None and len(shown.events) == len(THINKING_SCRIPT)
        await pilot.press("f9")
        await pilot.pause()
        assert any("hide_thinking" in str(n.message) for n in app._notifications)


async def test_cut_while_thinking_and_a_reply_without_a_section(tmp_path: Path) -> None:
    engine = FakeEngine(script=THINKING_SCRIPT[:6], end=StopKind.MAX_TOKENS)
    app = make_thinking_app(tmp_path, engine, sampling=SamplingParams(max_new_tokens=4))
    async with app.run_test(size=(120, 40)) as pilot:
        message = await send(pilot, "Hi")
        await finished(pilot)
        assert message.record.done is not None and message.record.done.stop.kind is StopKind.MAX_TOKENS
        assert str(message.thinking.render()) == "▸ thinking · 4 tokens (not closed)"
        assert message.markdown.source == "" and message.has_class("stop-max_tokens")
    plain = make_thinking_app(tmp_path, FakeEngine(script=("<", "b", ">", "bold")))
    async with plain.run_test(size=(120, 40)) as pilot:
        message = await send(pilot, "Hi")
        await finished(pilot)
        assert not message.thinking.display and message.markdown.source == "<b>bold"


async def test_a_stored_chat_opens_with_its_section_folded(tmp_path: Path) -> None:
    app = make_thinking_app(tmp_path, FakeEngine(script=THINKING_SCRIPT))
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, "Hi")
        await finished(pilot)
        chat_id = app.chat_session.chat_id
        assert chat_id is not None
        await app.action_new_chat()
        await pilot.pause()
        assert await app.chats.open_stored_chat(chat_id)
        await pilot.pause()
        message = app.query(AssistantMessage).last()
        assert message.record.done is not None and message.record.done.text == "".join(THINKING_SCRIPT)
        assert str(message.thinking.render()) == "▸ thinking · 9 tokens"
        assert message.markdown.source == "Hello!" and message.has_class("stop-eos")


def test_snapshot_of_a_folded_and_an_opened_section(
    snap_compare: Callable[..., bool], tmp_path: Path
) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await send(pilot, "Hi")
        await finished(pilot)
        await send(pilot, "Again")
        await finished(pilot)
        await pilot.press("f9")  # the last reply's section opens; the first stays folded
        for widget in pilot.app.screen.query("Input, TextArea"):
            widget.cursor_blink = False  # type: ignore[attr-defined]
        pilot.app.clear_notifications()
        await pilot.pause()

    app = make_thinking_app(tmp_path, FakeEngine(script=THINKING_SCRIPT))
    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=run_before)
