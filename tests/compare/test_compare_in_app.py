"""The compare view opened from the app: runs on the app's engine worker, a kept column becomes the reply."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Static

from settings.config import Settings
from settings.sampling import SamplingMode, SamplingParams
from tests.compare.compare_fakes import SCRIPTS, FakeBatch
from tests.fakes import FakeEngine, ScriptedToken
from tui.app import TokendialApp
from tui.core.conversation import ReplyTurn, UserTurn
from tui.engine.protocol import ChatEngine, LoadConfig
from tui.screens.compare import CompareScreen
from tui.widgets.chat_view import AssistantMessage
from tui.worker import CompareRunner

SIZE = (140, 40)
SETS = [SamplingParams(mode=SamplingMode.GREEDY), SamplingParams(temperature=0.8, seed=1)]


def script_text(script: Sequence[str | ScriptedToken]) -> str:
    return "".join(t if isinstance(t, str) else t.text for t in script)


class Harness:
    """An app on a FakeEngine whose compares run on a FakeBatch; records which engine and thread ran them."""

    def __init__(self, tmp_path: Path) -> None:
        self.engine: ChatEngine = FakeEngine()
        self.batch: CompareRunner = FakeBatch()
        self.ran_on: list[tuple[ChatEngine, str]] = []
        settings = Settings(model_path=tmp_path / "FakeLM-135M.Q4_1.gguf", data_dir=tmp_path / "data")
        self.app = TokendialApp(settings, engine_factory=self.factory, config_path=tmp_path / "config.toml")
        self.app.engine_worker.compare_runner = self.runner

    def factory(self, config: LoadConfig) -> ChatEngine:
        return self.engine

    def runner(self, engine: ChatEngine) -> CompareRunner:
        self.ran_on.append((engine, threading.current_thread().name))
        return self.batch

    def run(self, body: Callable[[Pilot[Any]], Awaitable[None]]) -> None:
        """Run the app, wait until the model is loaded, then ``body``."""

        async def main() -> None:
            async with self.app.run_test(size=SIZE) as pilot:
                await wait_for(pilot, lambda: self.app.model_state.value == "ready", "model loaded")
                await body(pilot)

        asyncio.run(main())


async def wait_for(pilot: Pilot[Any], condition: Any, what: str, limit_s: float = 60.0) -> None:
    """Let the app run until ``condition()`` holds (a wall-clock limit: the shared machine is slow)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for: {what}")


async def compare_and_keep(pilot: Pilot[Any], app: TokendialApp, keep: int) -> CompareScreen:
    """Open the compare (its key), show 2 columns, run them, keep column ``keep``."""
    await pilot.press("f5")
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), "the compare view")
    screen = app.screen
    assert isinstance(screen, CompareScreen)
    await screen.show_sets(SETS)
    await pilot.pause()
    await pilot.press("r")
    await wait_for(pilot, lambda: screen.done is not None, "the compare to end")
    assert [len(c.record.events) for c in screen.columns] == [len(SCRIPTS[0]), len(SCRIPTS[1])]
    screen.focus_column(keep)
    await pilot.pause()
    await pilot.press("p")
    await wait_for(pilot, lambda: not isinstance(app.screen, CompareScreen), "the view to close")
    await pilot.pause()
    return screen


def test_compare_from_the_prompt_box_keeps_a_column(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    app = harness.app

    async def body(pilot: Pilot[Any]) -> None:
        app.prompt.text = "What colour is the sky?"
        await compare_and_keep(pilot, app, keep=1)
        # the batch ran on the app's engine worker, on its engine, off the UI thread
        assert len(harness.ran_on) == 1
        engine, thread = harness.ran_on[0]
        assert engine is harness.engine
        assert thread != threading.main_thread().name
        turns = app.conversation.turns
        assert isinstance(turns[0], UserTurn) and turns[0].text == "What colour is the sky?"
        assert isinstance(turns[1], ReplyTurn) and len(turns) == 2
        record = turns[1].record
        assert record.done is not None and record.done.text == script_text(SCRIPTS[1])
        assert app.history[-1].content == script_text(SCRIPTS[1])
        assert app.prompt.text == ""
        shown = app.chat_view.assistant_message(record.reply_id)
        assert isinstance(shown, AssistantMessage)
        # the store saved it like any reply
        chat_id = app.chat_session.chat_id
        assert chat_id is not None
        stored = app.chat_session.store.load_chat(chat_id).messages
        assert [(str(m.role), m.text) for m in stored] == [
            ("user", "What colour is the sky?"),
            ("assistant", script_text(SCRIPTS[1])),
        ]
        # the other column is its branch, in the conversation and in the store
        siblings = app.conversation.branches.set_of(record.reply_id)
        assert siblings is not None and siblings.active == 1
        assert [r.streamed_text for r in siblings.records] == [
            script_text(SCRIPTS[0]),
            script_text(SCRIPTS[1]),
        ]
        assert stored[-1].sibling_count == 2 and stored[-1].sibling_ordinal == 1
        await app.action_sibling(1)  # ] : the other column is shown, as any branch
        await pilot.pause()
        shown_now = app.conversation.last_reply
        assert shown_now is not None and shown_now.streamed_text == script_text(SCRIPTS[0])
        assert app.chat_session.store.load_chat(chat_id).messages[-1].text == script_text(SCRIPTS[0])

    harness.run(body)


def test_compare_on_the_last_prompt_keeps_its_old_reply_as_a_branch(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    app = harness.app

    async def body(pilot: Pilot[Any]) -> None:
        app.prompt.focus()
        app.prompt.text = "Hello"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.busy and len(app.conversation.turns) == 2, "the reply")
        first = app.conversation.last_reply
        assert first is not None
        await compare_and_keep(pilot, app, keep=0)
        turns = app.conversation.turns
        assert len(turns) == 2 and isinstance(turns[0], UserTurn) and turns[0].text == "Hello"
        kept = app.conversation.last_reply
        assert kept is not None and kept.reply_id != first.reply_id
        assert kept.done is not None and kept.done.text == script_text(SCRIPTS[0])
        assert app.chat_view.assistant_message(first.reply_id) is None
        # the reply it had before is not lost: the first branch, before the two columns
        siblings = app.conversation.branches.set_of(kept.reply_id)
        assert siblings is not None and siblings.active == 1
        assert siblings.records[0].reply_id == first.reply_id
        assert [r.streamed_text for r in siblings.records[1:]] == [
            script_text(SCRIPTS[0]),
            script_text(SCRIPTS[1]),
        ]
        chat_id = app.chat_session.chat_id
        assert chat_id is not None
        stored = app.chat_session.store.load_chat(chat_id).messages
        assert len(stored) == 2 and stored[-1].sibling_count == 3 and stored[-1].sibling_ordinal == 1
        await app.action_sibling(-1)  # [ : the old reply is shown again, as any branch
        await pilot.pause()
        shown_now = app.conversation.last_reply
        assert shown_now is not None and shown_now.reply_id == first.reply_id
        assert app.chat_session.store.load_chat(chat_id).messages[-1].text == first.streamed_text

    harness.run(body)


def test_compare_without_a_prompt_says_so(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    app = harness.app

    async def body(pilot: Pilot[Any]) -> None:
        await pilot.press("f5")
        await pilot.pause()
        assert not isinstance(app.screen, CompareScreen)
        assert app.conversation.turns == []
        assert harness.ran_on == []

    harness.run(body)


def test_compare_in_completion_mode_continues_the_text(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    app = harness.app
    batch = harness.batch
    assert isinstance(batch, FakeBatch)

    async def body(pilot: Pilot[Any]) -> None:
        app.action_toggle_mode()  # F8: completion mode
        app.prompt.text = "Once upon a time"
        screen = await compare_and_keep(pilot, app, keep=0)
        assert screen.raw  # its prompt line says "completion mode"
        assert batch.raw_calls == [True]  # the batch got the raw text, no template
        assert [e.raw_calls for e in batch.engines] == [[True], [True]]
        record = app.conversation.last_reply
        assert record is not None and record.done is not None
        assert record.done.text == script_text(SCRIPTS[0])
        chat_id = app.chat_session.chat_id
        assert chat_id is not None
        [saved] = app.chat_session.store.load_comparisons(chat_id)
        assert saved.mode == "completion" and saved.kept == 0 and len(saved.columns) == 2

    harness.run(body)


def test_columns_that_do_not_fit_get_a_message_before_starting(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    app = harness.app

    async def body(pilot: Pilot[Any]) -> None:
        app.prompt.text = "What colour is the sky?"
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), "the compare view")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await screen.show_sets([SamplingParams(max_new_tokens=1000, seed=i) for i in range(3)])
        await pilot.pause()
        await pilot.press("r")
        info = screen.query_one("#compare-info", Static)
        await wait_for(pilot, lambda: "Not started" in str(info.render()), "the refusal")
        text = str(info.render())
        assert "3 columns need" in text and "2 columns fit" in text and "(n_ctx)" in text
        assert not screen.running and screen.done is None
        assert all(not c.record.events and c.record.done is None for c in screen.columns)
        await pilot.press("p")  # nothing to keep
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, CompareScreen), "the view to close")
        assert app.conversation.turns == []

    harness.run(body)
