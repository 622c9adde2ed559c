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
    "f2", "f3", "f4", "f8", "i", "u", "b", "r", "y", "n", "left_square_bracket", "right_square_bracket",
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
