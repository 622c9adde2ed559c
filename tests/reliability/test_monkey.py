"""A monkey at the keyboard: hundreds of random keys, pastes and resizes (fixed seeds) on the app
with the FakeEngine. Nothing may raise; afterwards the app still answers a prompt."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from textual import events
from textual.screen import ModalScreen

from tests.fakes import FakeEngine, ScriptedToken
from tests.reliability.reliability_support import SIZE, make_app, reply_done, send, wait_for, wait_ready
from tui.engine.events import StopKind

KEYS = [
    "enter", "escape", "tab", "shift+tab", "up", "down", "left", "right", "pageup", "pagedown", "home",
    "end", "ctrl+t", "ctrl+o", "ctrl+r", "ctrl+l", "ctrl+n", "ctrl+g", "ctrl+s", "ctrl+j", "ctrl+p", "f1",
    "f2", "f3", "f4", "f5", "f8", "f9", "f10", "f12", "i", "u", "b", "r", "y", "n", "left_square_bracket",
    "right_square_bracket",
    "delete", "backspace", "a", "1", "0", ".", "-", "space",
]  # fmt: skip
PASTES = ["hello", "[/]", "\x1b]0;x\x07", "0.5", "-3", "9999999", "", "🎉 日本語", "x" * 3000]
SIZES = [(120, 40), (80, 24), (30, 8), (200, 60)]


@pytest.mark.parametrize("seed", [1, 5, 6])
async def test_random_keys_never_break_the_app(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    script: list[str | ScriptedToken] = [f"{w} " for w in ("Hello", "there,", "this", "is", "a", "reply")]
    script += [ScriptedToken("[@click=app.quit]x"), "\x1b[2J"]
    fake = FakeEngine(script=tuple(script), end=StopKind.MAX_TOKENS, delay_s=0.001)
    app = make_app(fake, tmp_path, max_new_tokens=40)
    quits: list[str] = []

    async def record_quit() -> None:
        quits.append("quit")

    app.action_quit = record_quit  # type: ignore[method-assign]  # a stand-in: the app must not really quit
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "start")
        for _ in range(150):
            roll = rng.random()
            if roll < 0.05:
                app.post_message(events.Paste(rng.choice(PASTES)))
            elif roll < 0.08:
                await pilot.resize_terminal(*rng.choice(SIZES))
            else:
                await pilot.press(rng.choice(KEYS))
            if rng.random() < 0.2:
                await pilot.pause()
        # back to a known state: close dialogs, wait for any reply, then chat
        for _ in range(5):
            if isinstance(app.screen, ModalScreen) or app.screen is not app.screen_stack[0]:
                await pilot.press("escape")
                await pilot.pause()
        await pilot.resize_terminal(*SIZE)
        await wait_for(pilot, lambda: not app.busy, "idle", limit=2000)
        assert app.is_running and quits == []
        await pilot.press("ctrl+n")
        await send(pilot, "still there?")
        await reply_done(pilot)
        assert app.history[-1].role == "assistant"


PALETTE_WORDS = {"f2": "another", "f3": "rename", "f5": "compare", "f12": "backend"}
"""What to type in the command palette to pick each dialog's own command."""


@pytest.mark.parametrize("key", ["f2", "f3", "f5", "f12"])
async def test_a_dialog_key_pressed_twice_opens_one_dialog(key: str, tmp_path: Path) -> None:
    """The second press (a held key, an impatient user) while the dialog is up opens nothing more:
    no second screen with the same id (which Textual refuses with an error), and Esc closes it."""
    fake = FakeEngine(script=("Hi ", "there"), end=StopKind.MAX_TOKENS, delay_s=0.001)
    app = make_app(fake, tmp_path, max_new_tokens=4)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "a prompt to compare")  # f5 compares the last prompt
        await reply_done(pilot)
        await pilot.press(key)
        await wait_for(pilot, lambda: len(app.screen_stack) == 2, f"{key} opened its dialog")
        opened = type(app.screen)
        await pilot.press(key)
        await pilot.pause()
        assert [type(s) for s in app.screen_stack].count(opened) == 1
        await pilot.press("ctrl+p")  # the palette, over the dialog, and the same command from it
        await wait_for(pilot, lambda: len(app.screen_stack) == 3, "the palette opened")
        await pilot.press(*PALETTE_WORDS[key], "enter")
        await wait_for(pilot, lambda: len(app.screen_stack) == 2, "the palette closed")
        assert [type(s) for s in app.screen_stack].count(opened) == 1
        assert app.is_running
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1, "Esc closed it")
