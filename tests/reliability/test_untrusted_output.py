"""Matrix row 4, model output is untrusted: escape sequences, OSC, markup and a fake stop badge
are shown literally in the chat, the token view and the inspector, and can't reach the terminal
or trigger actions; `tokendial generate` escapes control characters when stdout is a terminal."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.app import App
from textual.widgets import Static

from settings.config import Settings
from settings.sampling import SamplingParams
from tests.fakes import FakeEngine, ScriptedToken
from tests.reliability.reliability_support import (
    SIZE,
    make_app,
    record_notifications,
    reply_done,
    screen_text,
    send,
    wait_ready,
)
from tui.engine.events import ModelInfo, StopKind
from tui.engine.protocol import LoadConfig
from tui.headless import run_generate
from tui.widgets.chat_view import AssistantMessage, UserMessage

HOSTILE: dict[str, str] = {
    "ansi colour": "\x1b[31mRED\x1b[0m",
    "clear screen": "\x1b[2J\x1b[H",
    "leave alt screen": "\x1b[?1049l",
    "OSC 52 clipboard": "\x1b]52;c;cm0gLXJmIH4=\x07",
    "OSC 8 link": "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "OSC 0 title": "\x1b]0;pwned\x07",
    "8-bit CSI": "\x9b31m",
    "8-bit OSC": "\x9d0;title\x9c",
    "bidi override": "\u202eevil\u202c",
    "rich markup": "[bold red]alarm[/]",
    "click action": "[@click=app.quit]quit[/]",
    "unbalanced close": "[/]",
    "link markup": "[link=file:///etc/passwd]x[/link]",
    "fake stop badge": "\n■ END OF SEQUENCE <|im_end|>\n",
}
LITERAL = ("[bold red]alarm[/]", "[@click=app.quit]quit[/]", "[/]", "[link=file:///etc/passwd]x[/link]")
"""Markup that must appear character for character."""
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def hostile_script() -> tuple[ScriptedToken, ...]:
    """Each hostile text as a token, with the next one as its runner-up candidate (for the inspector)."""
    texts = list(HOSTILE.values())
    return tuple(
        ScriptedToken(text, 0.5, ((texts[(i + 1) % len(texts)], 0.3), ("[@click=app.bell]", 0.1)))
        for i, text in enumerate(texts)
    )


def assert_inert(app: App[Any]) -> None:
    """Nothing on screen carries a control character, and no segment links to an app action."""
    strips = app.screen._compositor.render_strips()
    for strip in strips:
        for segment in strip:
            assert not CONTROL.search(segment.text), repr(segment.text)
            meta = segment.style.meta if segment.style is not None else {}
            assert "quit" not in str(meta.get("@click", "")), segment


class QuitWatch:
    """Records whether app.quit / app.bell ran (they must not, from model text)."""

    def __init__(self, app: App[Any], monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in ("action_quit", "action_bell"):
            monkeypatch.setattr(app, name, lambda name=name: self.calls.append(name))


async def test_hostile_reply_is_literal_in_chat_tokens_and_inspector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(FakeEngine(script=hostile_script(), end=StopKind.MAX_TOKENS), tmp_path, max_new_tokens=14)
    watch = QuitWatch(app, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "say something nasty")
        await reply_done(pilot)
        message = list(app.chat_view.query(AssistantMessage))[-1]
        source = message.markdown.source
        assert not CONTROL.search(source)
        for text in ("␛[31mRED", "␛]52;c;cm0gLXJmIH4=␇", "␛]0;pwned␇", "\\u009b31m", "\\u202eevil"):
            assert text in source
        # the real badge says what really happened; the model's "badge" is reply text
        badge = str(message.query_one(".badge", Static).render())
        assert "max" in badge.lower() and "END OF SEQUENCE" not in badge
        assert "END OF SEQUENCE <|im_end|>" in source
        assert_inert(app)
        for x in range(2, 100, 7):  # click all over the reply
            await pilot.click(AssistantMessage, offset=(x % 60, x // 20))
        await pilot.pause()

        await pilot.press("ctrl+t")
        await pilot.pause()
        rendered = app.token_view.render()
        assert isinstance(rendered, Text)
        for literal in LITERAL:
            assert literal.replace(" ", "␣") in rendered.plain
        assert "MAX NEW TOKENS" in rendered.plain
        assert_inert(app)
        for x in range(0, 100, 9):
            await pilot.click("#token-view", offset=(x, 1))
        await pilot.pause()

        app.token_view.cursor = 10  # the click-action token
        await pilot.press("i")
        await pilot.pause()
        shown = screen_text(app)
        assert "token [@click=app.quit]quit[/]" in shown  # the inspector's head
        assert "[@click=ap…" in shown and " [/] " in shown  # candidates (cut to the column)
        assert_inert(app)
        for index in range(len(HOSTILE)):  # every hostile token in the inspector, one by one
            app.token_view.cursor = index
            await pilot.pause()
            assert_inert(app)
        assert app.is_running
    assert watch.calls == []


async def test_hostile_user_prompt_and_model_name_are_literal(tmp_path: Path) -> None:
    """The user's own paste and the model's name (GGUF metadata) are shown the same careful way."""

    class HostileNameEngine(FakeEngine):
        @property
        def info(self) -> ModelInfo:
            return dataclasses.replace(
                super().info, name="[@click=app.quit]Evil\x1b]0;t\x07", quantization="[/]"
            )

    app = make_app(HostileNameEngine(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "\x1b]52;c;eA==\x07 [@click=app.quit]x[/] \u202eabc")
        await reply_done(pilot)
        user = app.chat_view.query_one(UserMessage)
        assert "␛]52;c;eA==␇ [@click=app.quit]x[/]" in str(user.render())
        assert "[@click=app.quit]Evil" in screen_text(app)
        assert_inert(app)
        # the conversation keeps the user's exact text (only the display is made safe)
        assert app.history[0].content.startswith("\x1b]52;c;eA==\x07")


async def test_notifications_are_plain_text(tmp_path: Path) -> None:
    """A notification quoting model or user text shows it literally (``[/]`` used to raise MarkupError)."""
    app = make_app(FakeEngine(), tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_ready(pilot)
        app.notify("token '[/]' and [@click=app.quit]x[/] ([ and ] switch)", title="[b]t[/b]")
        await pilot.pause(0.2)
        shown = screen_text(app)
        assert "token '[/]' and [@click=app.quit]x[/] ([ and ] switch)" in shown
        assert_inert(app)
        assert app.is_running


# -- `tokendial generate` ----------------------------------------------------------------------


class Terminal(io.StringIO):
    """A stdout that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _generate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, out: io.StringIO, json_output: bool = False
) -> str:
    fake = FakeEngine(script=hostile_script(), end=StopKind.EOS)

    def load_engine(config: LoadConfig) -> FakeEngine:
        return fake

    monkeypatch.setattr("tui.engine.llama_engine.load_engine", load_engine)
    settings = Settings(model_path=tmp_path / "m.gguf", sampling=SamplingParams(max_new_tokens=50))
    err = Terminal()
    assert run_generate(settings, "hi", json_output, stdout=out, stderr=err) == 0
    assert not CONTROL.search(err.getvalue())
    return out.getvalue()


def test_generate_to_a_terminal_escapes_control_characters(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shown = _generate(monkeypatch, tmp_path, Terminal())
    assert not CONTROL.search(shown.replace("\n", ""))
    assert "␛]52;c;cm0gLXJmIH4=␇" in shown and "[@click=app.quit]quit[/]" in shown


def test_generate_to_a_pipe_is_the_exact_text(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Redirected or piped, the reply is written exactly as generated (a file gets the real text)."""
    shown = _generate(monkeypatch, tmp_path, io.StringIO())
    assert shown == "".join(HOSTILE.values()) + "\n"


def test_generate_json_escapes_control_characters(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shown = _generate(monkeypatch, tmp_path, Terminal(), json_output=True)
    assert "\x1b" not in shown and "\\u001b]52;c;" in shown
    assert not CONTROL.search(shown.replace("\n", ""))


async def test_hostile_chat_titles_in_the_chat_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Titles come from first prompts and imported files: listed, renamed, deleted and opened safely."""
    title = "\x1b]0;pwn\x07 [/] [@click=app.quit]x[/] \u202eabc"
    app = make_app(FakeEngine(), tmp_path)
    watch = QuitWatch(app, monkeypatch)
    notices = record_notifications(app)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_ready(pilot)
        await send(pilot, title)  # the first prompt becomes the chat's title
        await reply_done(pilot)
        await pilot.press("ctrl+n")
        await pilot.press("f3")
        await pilot.pause(0.2)
        assert "␛]0;pwn␇ [/] [@click=app.quit]x[/]" in screen_text(app)
        assert_inert(app)
        await pilot.press("f8")  # the delete dialog quotes the title
        await pilot.pause(0.2)
        assert_inert(app)
        await pilot.press("n")
        await pilot.press("f2")  # the rename dialog holds the title in an input
        await pilot.pause(0.2)
        assert_inert(app)
        await pilot.press("escape")
        await pilot.press("enter")  # open it: "Opened “…”"
        await pilot.pause(0.2)
        assert any("Opened" in n for n in notices)
        assert_inert(app)
        assert app.is_running
    assert watch.calls == []


async def test_pasted_escape_sequences_in_the_prompt_box(tmp_path: Path) -> None:
    """A paste carrying hidden escape sequences is drawn with stand-ins, and sent exactly."""
    from textual import events

    pasted = "please \x1b]52;c;cm0=\x07 summarise \x1b[2J\x9b31m \u202eevil"
    fake = FakeEngine()
    app = make_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        app.prompt.focus()
        app.post_message(events.Paste(pasted))
        await pilot.pause()
        assert app.prompt.text == pasted
        assert "␛]52;c;cm0=" in screen_text(app)
        assert_inert(app)
        await pilot.press("enter")
        await reply_done(pilot)
        assert fake.calls[0][-1].content == pasted
        assert_inert(app)


BOMBS: dict[str, str] = {
    "2,000 nested quotes": ">" * 2000 + " x",
    "300 nested lists": "".join("  " * i + "- x\n" for i in range(300)),
    "5,000 nested brackets": "[" * 5000 + "]" * 5000,
    "3,000 open HTML tags": "<div>" * 3000,
    "20,000 emphasis marks": "*a " * 20000,
    "a 60,000-character word": "=" * 60_000,
}


@pytest.mark.parametrize("bomb", list(BOMBS))
async def test_pathological_markdown_and_long_words(bomb: str, tmp_path: Path) -> None:
    """Output built to choke a renderer: the reply ends, both views draw it, the app stays usable.

    A 60,000-character token used to take seconds per layout in the token view (quadratic chop)."""
    app = make_app(FakeEngine(script=(ScriptedToken(BOMBS[bomb]),)), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "go")
        await reply_done(pilot)
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.token_view.record is not None and app.token_view.record.done is not None
        await pilot.press("ctrl+t")
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert app.is_running and app.records[1].done is not None


async def test_markup_typed_into_the_chat_search(tmp_path: Path) -> None:
    """Searching the chats for "[/]" (no chat matches) crashed the app: the 'no match' line was markup."""
    from textual.widgets import Input

    app = make_app(FakeEngine(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.press("f3")
        await pilot.pause()
        search = app.screen.query_one("#chat-search", Input)
        for typed in ("[/]", "[@click=app.quit]x", "[bold]unclosed"):
            search.value = typed
            await pilot.pause(0.2)
            assert app.is_running
            assert f"No chat contains “{typed}”." in screen_text(app)
            assert_inert(app)


async def test_escape_sequences_pasted_into_a_one_line_field(tmp_path: Path) -> None:
    """A one-line field draws its value raw: a paste there gets visible stand-ins instead."""
    from textual import events
    from textual.widgets import Input

    app = make_app(FakeEngine(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.press("f3")
        await pilot.pause()
        search = app.screen.query_one("#chat-search", Input)
        search.focus()
        app.post_message(events.Paste("\x1b]0;pwn\x07 title"))
        await pilot.pause(0.2)
        assert search.value == "␛]0;pwn␇ title"
        assert_inert(app)
