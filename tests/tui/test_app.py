"""Pilot tests of the app on the FakeEngine: start-up, chat, stop badges, live parameters, controls."""

from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual import events
from textual.message import Message
from textual.widgets import ContentSwitcher, Input, Select, Static
from textual.widgets._footer import FooterKey

from settings.sampling import SamplingMode, SamplingParams
from tests.fakes import EOS_TEXT, FakeEngine, ScriptedToken
from tests.tui.tui_app_helpers import SIZE, make_app, reply_done, send, send_and_hold, wait_for, wait_ready
from tui.app import TokendialApp
from tui.engine.events import ChatMessage, EngineEvent, ModelLoadError, PromptTrimmed, StopKind
from tui.engine.live import LiveParams
from tui.engine.protocol import ChatEngine, LoadConfig
from tui.screens.help import HelpScreen
from tui.widgets.chat_view import AssistantMessage, Notice, UserMessage
from tui.widgets.sampling_panel import StepInput
from tui.widgets.status_bar import ModelState, context_gauge
from tui.widgets.token_view import TokenView
from tui.worker import ReplyFinished, TokensStreamed


def current_mode(app: TokendialApp) -> SamplingMode:
    """The live sampling mode (a call, so that type narrowing from earlier asserts does not stick)."""
    return app.live.params.mode


def badge_text(app: TokendialApp) -> str:
    """The small badge of the last assistant message."""
    message = list(app.chat_view.query(AssistantMessage))[-1]
    rendered = message.query_one(".badge", Static).render()
    return str(rendered)


def token_view_text(app: TokendialApp) -> str:
    """The plain text the token view draws."""
    rendered = app.token_view.render()
    assert isinstance(rendered, Text)
    return rendered.plain


# -- start-up ----------------------------------------------------------------------------
async def test_screen_appears_while_model_loads_then_ready(tmp_path: Path) -> None:
    gate = threading.Event()
    app = make_app(FakeEngine(), tmp_path, gate=gate)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.status.state is ModelState.LOADING
        assert "loading" in str(app.status.render())
        notice = app.chat_view.query_one("#load-notice", Notice)
        assert "Loading model" in str(notice.render())
        # A prompt sent while loading waits for the model.
        await send(pilot, "early question")
        gate.set()
        await wait_ready(pilot)
        await reply_done(pilot)
        assert not app.chat_view.query("#load-notice")
        assert app.history[-1].role == "assistant"
        assert "FakeLM-135M Q4_1" in str(app.status.render())


async def test_load_failure_shows_reason_and_what_to_do(tmp_path: Path) -> None:
    def failing(config: LoadConfig) -> ChatEngine:
        raise ModelLoadError(f"model file not found: {config.model_path}", "Run `tokendial fetch`.")

    app = TokendialApp(
        make_app(FakeEngine(), tmp_path).settings, engine_factory=failing, config_path=tmp_path / "c.toml"
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state is ModelState.FAILED, "load failure")
        await pilot.pause()
        error = str(app.chat_view.query_one("#load-error", Notice).render())
        assert "could not be loaded" in error
        assert "model file not found" in error
        assert "tokendial fetch" in error
        assert "Traceback" not in error
        assert "model failed" in str(app.status.render())
        assert not await app.send_prompt("hello")
        assert app.history == []


async def test_unexpected_load_exception_is_a_message(tmp_path: Path) -> None:
    def broken(config: LoadConfig) -> ChatEngine:
        raise RuntimeError("boom")

    app = TokendialApp(make_app(FakeEngine(), tmp_path).settings, engine_factory=broken)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state is ModelState.FAILED, "load failure")
        await pilot.pause()
        assert "RuntimeError: boom" in str(app.chat_view.query_one("#load-error", Notice).render())


# -- chat and stop badges ------------------------------------------------------------------
async def test_send_streams_reply_and_shows_eos_badge(tmp_path: Path, fake: FakeEngine) -> None:
    app = make_app(fake, tmp_path)
    finished: list[ReplyFinished] = []
    app.reply_observers.append(finished.append)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "Who are you?")
        await reply_done(pilot)
        assert [m.content for m in app.chat_view.query(UserMessage)] == ["Who are you?"]
        assert app.history[-1].content == "Hello, I am a small model.\nAsk me anything!"
        assert fake.calls[0][0].role == "system"
        assert fake.calls[0][-1].content == "Who are you?"
        assert f"end of sequence {EOS_TEXT}" in badge_text(app)
        assert "end of sequence" in str(app.status.render())
        assert "100.0 tok/s" in str(app.status.render())
        assert app.prompt.text == ""
        # the observers got one ReplyFinished with the messages, params and every token
        assert len(finished) == 1
        assert finished[0].done.stop.kind is StopKind.EOS
        assert finished[0].messages[-1].content == "Who are you?"
        assert len(finished[0].tokens) == len(fake.script)
        assert finished[0].params == app.live.params


@pytest.mark.parametrize(
    ("engine", "sampling", "chat_badge", "token_badge"),
    [
        (FakeEngine(), {}, "end of sequence <|im_end|>", "END OF SEQUENCE  <|im_end|>"),
        (FakeEngine(end=StopKind.MAX_TOKENS), {"max_new_tokens": 5}, "stopped at 5/5", "stopped at 5/5"),
        (FakeEngine(), {"stop": ("small",)}, "stop string 'small'", "STOP STRING  'small'"),
        (FakeEngine(end=StopKind.MAX_TOKENS, n_ctx=40), {}, "context full (40 tokens)", "CONTEXT FULL"),
        (FakeEngine(end=StopKind.ERROR, error_message="decode failed"), {}, "error: decode failed", "ERROR"),
    ],
    ids=["eos", "max_tokens", "stop_string", "context_full", "error"],
)
async def test_stop_badges(
    tmp_path: Path, engine: FakeEngine, sampling: dict[str, Any], chat_badge: str, token_badge: str
) -> None:
    app = make_app(engine, tmp_path, **sampling)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "go")
        await reply_done(pilot)
        assert chat_badge in badge_text(app)
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert token_badge in token_view_text(app)


async def test_stop_string_is_cut_from_the_final_text(tmp_path: Path) -> None:
    app = make_app(FakeEngine(), tmp_path, stop=(" small",))
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "go")
        await reply_done(pilot)
        assert app.history[-1].content == "Hello, I am a"
        message = list(app.chat_view.query(AssistantMessage))[-1]
        assert "small" not in message.markdown.source


async def test_escape_cancels_and_keeps_partial_reply(tmp_path: Path) -> None:
    engine = FakeEngine(hold_at=4)
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send_and_hold(pilot, engine, "go", "engine at token 4")
        assert app.status.state is ModelState.GENERATING
        await pilot.press("escape")
        await reply_done(pilot)
        assert app.history[-1].content == "Hello, I am"
        assert "cancelled after 4 tokens" in badge_text(app)
        message = list(app.chat_view.query(AssistantMessage))[-1]
        assert message.has_class("stop-cancelled")
        assert "Hello, I am" in message.markdown.source


# -- live parameters ------------------------------------------------------------------------
async def test_parameter_change_mid_reply_applies_from_next_token_and_is_marked(tmp_path: Path) -> None:
    engine = FakeEngine(hold_at=3)
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send_and_hold(pilot, engine, "go", "engine at token 3")
        field = app.panel.query_one("#field-temperature", StepInput)
        field.focus()
        field.value = "1.5"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.live.params.temperature == 1.5, "live params updated")
        engine.release()
        await reply_done(pilot)
        record = app.records[1]
        versions = [event.params_version for event in record.events]
        assert versions[:3] == [0, 0, 0]
        assert set(versions[3:]) == {app.live.version}
        assert record.done is not None
        assert record.done.params[app.live.version].temperature == 1.5
        await pilot.press("ctrl+t")
        await pilot.pause()
        text = token_view_text(app)
        assert "⚙ temperature 0.8→1.5" in text
        assert text.index("⚙") > text.index("I")  # after the third token


async def test_step_keys_change_values_and_live_params(tmp_path: Path) -> None:
    app = make_app(FakeEngine(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.press("f4")
        assert app.focused is app.panel.query_one("#field-temperature")
        await pilot.press("up", "up")
        await pilot.pause()
        assert app.live.params.temperature == pytest.approx(0.9)
        await pilot.press("pagedown")
        await pilot.pause()
        assert app.live.params.temperature == pytest.approx(0.4)
        top_k = app.panel.query_one("#field-top_k", StepInput)
        top_k.focus()
        await pilot.press("down", "pageup")
        await pilot.pause()
        assert app.live.params.top_k == 49
        max_tokens = app.panel.query_one("#field-max_new_tokens", StepInput)
        max_tokens.focus()
        await pilot.press("up")
        await pilot.pause()
        assert app.live.params.max_new_tokens == 272
        # stepping stops at the range's ends
        top_p = app.panel.query_one("#field-top_p", StepInput)
        top_p.focus()
        await pilot.press("pageup", "pageup")
        await pilot.pause()
        assert app.live.params.top_p == 1.0
        assert top_p.value == "1.0"


async def test_typed_value_applies_and_invalid_value_is_shown_not_applied(tmp_path: Path) -> None:
    app = make_app(FakeEngine(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        top_p = app.panel.query_one("#field-top_p", StepInput)
        top_p.focus()
        top_p.value = ""
        await pilot.press(*"0.5")
        await pilot.pause()
        assert app.live.params.top_p == 0.95  # typing alone does not apply
        await pilot.press("enter")
        await pilot.pause()
        assert app.live.params.top_p == 0.5
        version = app.live.version
        await pilot.press("backspace", "backspace", "backspace", "1", ".", "5", "enter")
        await pilot.pause()
        assert top_p.value == "1.5"
        assert app.live.params.top_p == 0.5
        assert app.live.version == version
        error = str(app.panel.query_one("#error-top_p", Static).render())
        assert "top-p must be a number above 0, at most 1" in error
        assert "not applied" in error
        assert app.panel.query_one("#row-top_p").has_class("invalid")
        top_k = app.panel.query_one("#field-top_k", StepInput)
        top_k.focus()  # leaving top-p does not apply its invalid value
        await pilot.pause()
        assert app.live.params.top_p == 0.5
        top_k.value = "abc"
        await pilot.press("enter")
        assert "top-k must be a whole number" in str(app.panel.query_one("#error-top_k", Static).render())
        top_k.value = "12"
        await pilot.press("enter")
        await pilot.pause()
        assert app.live.params.top_k == 12
        assert not app.panel.query_one("#row-top_k").has_class("invalid")


async def test_stop_strings_field(tmp_path: Path) -> None:
    app = make_app(FakeEngine(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        field = app.panel.query_one("#field-stop", Input)
        field.focus()
        field.value = "###, \\n\\n, a\\,b"
        await pilot.press("enter")
        assert app.live.params.stop == ("###", "\n\n", "a,b")


async def test_greedy_mode_disables_irrelevant_controls(tmp_path: Path) -> None:
    app = make_app(FakeEngine(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert app.live.params.mode is SamplingMode.GREEDY
        for name in ("temperature", "top_k", "top_p", "min_p", "seed"):
            assert app.panel.query_one(f"#field-{name}").disabled, name
        for name in ("repeat_penalty", "max_new_tokens"):
            assert not app.panel.query_one(f"#field-{name}").disabled, name
        assert app.panel.query_one("#greedy-note").display
        await pilot.press("f4")
        assert app.focused is app.panel.query_one("#field-repeat_penalty")
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert current_mode(app) is SamplingMode.SAMPLE
        assert not app.panel.query_one("#field-temperature").disabled


async def test_preset_and_reset(tmp_path: Path) -> None:
    app = make_app(FakeEngine(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        preset: Select[str] = app.panel.query_one("#preset", Select)
        preset.value = "creative"
        await pilot.pause()
        assert app.live.params == app.presets["creative"]
        assert app.panel.query_one("#field-temperature", StepInput).value == "1.2"
        app.action_reset_params()
        await pilot.pause()
        assert app.live.params == app.settings.sampling
        assert app.panel.query_one("#field-temperature", StepInput).value == "0.8"


async def test_save_as_default_writes_the_config_file(tmp_path: Path) -> None:
    app = make_app(FakeEngine(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        field = app.panel.query_one("#field-top_k", StepInput)
        field.focus()
        field.value = "7"
        await pilot.press("enter")
        await pilot.click("#save-default")
        await pilot.pause()
        saved = tomllib.loads((tmp_path / "config.toml").read_text())
        assert saved["sampling"]["top_k"] == 7


async def test_save_as_default_failure_is_a_notification(tmp_path: Path) -> None:
    app = make_app(FakeEngine(), tmp_path)
    (tmp_path / "config.toml").write_text("not = [valid")
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert any("invalid TOML" in str(n.message) for n in app._notifications)


# -- prompt box and controls ------------------------------------------------------------------
async def test_prompt_newline_key_and_long_paste(tmp_path: Path, fake: FakeEngine) -> None:
    app = make_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.press("a", "ctrl+j", "b")
        assert app.prompt.text == "a\nb"
        long_text = "word " * 2000
        app.prompt.insert(long_text)
        await pilot.press("enter")
        await reply_done(pilot)
        assert fake.calls[0][-1].content == "a\nb" + long_text
        await pilot.press("enter")  # a blank prompt is not sent
        await pilot.pause()
        assert len(fake.calls) == 1


async def test_regenerate_uses_current_params(tmp_path: Path, fake: FakeEngine) -> None:
    app = make_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hi")
        await reply_done(pilot)
        field = app.panel.query_one("#field-max_new_tokens", StepInput)
        field.focus()
        field.value = "3"
        await pilot.press("enter")
        await pilot.press("ctrl+r")
        await reply_done(pilot)
        assert len(fake.calls) == 2
        assert fake.calls[1] == fake.calls[0]
        assert len(app.chat_view.query(AssistantMessage)) == 1
        assert [m.role for m in app.history] == ["user", "assistant"]
        assert "stopped at 3/3" in badge_text(app)


async def test_edit_last_prompt_and_resend(tmp_path: Path, fake: FakeEngine) -> None:
    app = make_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "first")
        await reply_done(pilot)
        await send(pilot, "secnod")
        await reply_done(pilot)
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert app.prompt.text == "secnod"
        assert [m.content for m in app.chat_view.query(UserMessage)] == ["first"]
        assert len(app.history) == 2
        app.prompt.text = "second"
        await pilot.press("enter")
        await reply_done(pilot)
        assert fake.calls[-1][-1].content == "second"
        assert [m.content for m in app.chat_view.query(UserMessage)] == ["first", "second"]


async def test_new_chat_clears_everything(tmp_path: Path, fake: FakeEngine) -> None:
    app = make_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hi")
        await reply_done(pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.history == []
        assert not app.chat_view.query(".message")
        assert app.records == {}
        await send(pilot, "again")
        await reply_done(pilot)
        assert [m.role for m in fake.calls[-1]] == ["system", "user"]


async def test_busy_app_refuses_a_second_prompt(tmp_path: Path) -> None:
    engine = FakeEngine(hold_at=1)
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send_and_hold(pilot, engine, "one", "engine holding")
        assert not await app.send_prompt("two")
        await pilot.press("ctrl+r")
        engine.release()
        await reply_done(pilot)
        assert len(engine.calls) == 1


# -- token view --------------------------------------------------------------------------------
async def test_token_view_cursor_and_selection(tmp_path: Path, fake: FakeEngine) -> None:
    app = make_app(fake, tmp_path)
    selected: list[TokenView.TokenSelected] = []

    def hook(message: Message) -> None:
        if isinstance(message, TokenView.TokenSelected):
            selected.append(message)

    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hi")
        await reply_done(pilot)
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.screen.query_one("#views", ContentSwitcher).current == "tokens"
        assert app.focused is app.token_view
        await pilot.press("right", "right")
        await pilot.pause()
        assert app.token_view.cursor == 1
        assert app.token_view.selected_event is not None
        assert app.token_view.selected_event.text == ","
        assert selected[-1].index == 1 and selected[-1].event.text == ","
        assert selected[-1].event.candidates  # the per-token candidates stay reachable
        await pilot.press("end")
        assert app.token_view.cursor == len(fake.script) - 1
        await pilot.press("left")
        assert app.token_view.cursor == len(fake.script) - 2
        await pilot.press("home")
        assert app.token_view.cursor == 0
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.screen.query_one("#views", ContentSwitcher).current == "chat"
        assert app.focused is not None and app.focused.id == "prompt"


async def test_status_bar_counts_from_the_first_token(tmp_path: Path) -> None:
    """The live count is redrawn at most twice a second, but the first token shows at once (a prompt
    progress redraw just before it must not hold the count at 0)."""
    engine = FakeEngine(hold_at=3)
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send_and_hold(pilot, engine, "go", "engine at token 3")
        await wait_for(pilot, lambda: "generating 0" not in str(app.status.render()), "a live count")
        assert "generating " in str(app.status.render())
        engine.release()
        await reply_done(pilot)
        assert app.status.live_tokens == 0


async def test_hidden_token_view_catches_up_when_shown(tmp_path: Path) -> None:
    """Tokens streamed while the chat is shown are not laid out in the hidden token view (each
    layout of a hidden view still costs the screen a layout pass); showing the view catches up."""
    engine = FakeEngine(hold_at=3)
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send_and_hold(pilot, engine, "go", "engine at token 3")
        await pilot.press("ctrl+t")  # shown mid-reply: it follows the stream
        await wait_for(pilot, lambda: "Hello" in token_view_text(app), "the first token drawn")
        await pilot.press("ctrl+t")  # back to the chat
        await pilot.pause()
        hidden_size = app.token_view.virtual_size
        engine.release()
        await reply_done(pilot)
        assert app.token_view.virtual_size == hidden_size  # nothing laid out while hidden
        assert "Ask me anything!" in app.history[-1].content
        await pilot.press("ctrl+t")
        await pilot.pause()
        text = token_view_text(app)
        assert "anything" in text
        assert "END OF SEQUENCE" in text
        assert app.token_view.virtual_size.height > hidden_size.height
        assert app.token_view.strip is not None
        assert len(app.token_view.strip.values) == len(engine.script)


async def test_token_view_shows_whitespace_and_probability_colours(tmp_path: Path, fake: FakeEngine) -> None:
    app = make_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hi")
        await reply_done(pilot)
        await pilot.press("ctrl+t")
        await pilot.pause()
        text = token_view_text(app)
        assert "␣I" in text and "↵\n" in text
        before = app.token_view.render()
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert app.token_view.color_by_probability
        after = app.token_view.render()
        assert isinstance(before, Text) and isinstance(after, Text)
        assert [str(s.style) for s in before.spans] != [str(s.style) for s in after.spans]


async def test_untrusted_model_text_is_shown_literally(tmp_path: Path) -> None:
    script = (
        ScriptedToken("[bold]x[/bold]"),
        ScriptedToken("[@click=app.quit]q[/]"),
        ScriptedToken("\x1b[31mred\x1b]0;title\x07"),
    )
    app = make_app(FakeEngine(script=script), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hi")
        await reply_done(pilot)
        message = list(app.chat_view.query(AssistantMessage))[-1]
        assert "\x1b" not in message.markdown.source
        assert "␛[31mred" in message.markdown.source
        await pilot.press("ctrl+t")
        await pilot.pause()
        text = token_view_text(app)
        assert "[bold]x[/bold]" in text
        assert "[@click=app.quit]q[/]" in text
        assert "\x1b" not in text and "\x07" not in text
        assert app.is_running


async def test_help_screen_and_palette_commands(tmp_path: Path) -> None:
    app = make_app(FakeEngine(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        help_md = app.screen.query_one("Markdown").source  # type: ignore[attr-defined]
        for idea in ("most likely token", "k most likely", "add up to p", "Reshapes", "cap"):
            assert idea in help_md
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        for title in ("Cancel reply", "Regenerate", "Edit last prompt", "New chat", "Toggle token view",
                      "Colour tokens by probability", "Toggle greedy", "Reset parameters",
                      "Save parameters as default", "Help: parameters and keys"):  # fmt: skip
            assert title in titles
        footer_keys = {key.key for key in app.screen.query(FooterKey)}
        assert {"escape", "ctrl+t", "ctrl+r", "ctrl+l", "ctrl+n", "f1"} <= footer_keys


async def test_click_selects_a_token(tmp_path: Path, fake: FakeEngine) -> None:
    app = make_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hi")
        await reply_done(pilot)
        await pilot.press("ctrl+t")
        await pilot.pause()
        # "Hello" fills columns 1-5 (after the left padding), "," is column 6.
        await pilot.click(TokenView, offset=(6, 0))
        await pilot.pause()
        assert app.token_view.cursor == 1
        await pilot.click(TokenView, offset=(2, 0))
        await pilot.pause()
        assert app.token_view.cursor == 0


async def test_status_bar_shows_gpu_layers_and_context_gauge(tmp_path: Path) -> None:
    app = make_app(FakeEngine(gpu_layers=30), tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hi")
        await reply_done(pilot)
        status = str(app.status.render())
        assert "GPU 30/30" in status
        record = app.records[1]
        assert record.done is not None
        used = record.done.prompt_tokens + record.done.generated
        assert f"ctx ▰▱▱▱▱▱▱▱▱▱▱▱ {used}/2048" in status
        assert "first token 50 ms" in status


async def test_trimmed_conversation_is_reported(tmp_path: Path) -> None:
    engine = FakeEngine(trimmed=PromptTrimmed(dropped_messages=2, prompt_tokens=900, n_ctx=1024))
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hi")
        await reply_done(pilot)
        messages = [str(n.message) for n in app._notifications]
        assert any("2 oldest messages were left out" in m for m in messages)


def test_context_gauge_fills_and_turns_red() -> None:
    gauge = context_gauge(1900, 2048, width=10)
    assert gauge.plain == "ctx ▰▰▰▰▰▰▰▰▰▱ 1900/2048"
    assert any("#ef5350" in str(span.style) for span in gauge.spans)
    assert context_gauge(100, 2048, width=10).plain == "ctx ▰▱▱▱▱▱▱▱▱▱ 100/2048"
    assert context_gauge(0, 2048, width=10).plain == "ctx ▱▱▱▱▱▱▱▱▱▱ 0/2048"


async def test_pasted_text_goes_into_the_prompt(tmp_path: Path, fake: FakeEngine) -> None:
    app = make_app(fake, tmp_path)
    pasted = "line one\nline two\n" * 500
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        app.post_message(events.Paste(pasted))  # as the terminal driver does
        await pilot.pause()
        assert app.prompt.text == pasted
        await pilot.press("enter")
        await reply_done(pilot)
        assert fake.calls[0][-1].content == pasted


class RaisingEngine(FakeEngine):
    """Breaks its promise never to raise: fails after two tokens."""

    def stream_reply(
        self,
        messages: Sequence[ChatMessage],
        live: LiveParams,
        cancel: threading.Event,
        *,
        continue_from: Sequence[int] = (),
        raw: bool = False,
    ) -> Iterator[EngineEvent]:
        for index, event in enumerate(super().stream_reply(messages, live, cancel)):
            if index == 3:  # progress, two tokens, then boom
                raise RuntimeError("native crash")
            yield event


async def test_an_engine_exception_ends_the_reply_with_an_error_badge(tmp_path: Path) -> None:
    app = make_app(RaisingEngine(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hi")
        await reply_done(pilot)
        assert "error: RuntimeError: native crash" in badge_text(app)
        assert app.history[-1].content == "Hello,"
        assert app.is_running
        await send(pilot, "again")  # the engine thread still serves replies
        await reply_done(pilot)
        assert len(app.records) == 2


async def test_quitting_closes_the_engine(tmp_path: Path, fake: FakeEngine) -> None:
    app = make_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hi")
        await reply_done(pilot)
    for _ in range(500):  # the engine thread closes it after the app has gone
        if fake.closed:
            break
        time.sleep(0.01)
    assert fake.closed


async def test_token_pane_subtitle_shows_the_selected_tokens_probability(
    tmp_path: Path, fake: FakeEngine
) -> None:
    app = make_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hi")
        await reply_done(pilot)
        await pilot.press("ctrl+t")
        pane = app.screen.query_one("#tokens")
        assert str(pane.border_subtitle).startswith(f"{len(fake.script)} tokens")
        await pilot.press("right")
        event = app.records[1].events[0]
        assert f"token 1/{len(fake.script)} · p {event.p_final:.2f} (at T=1 {event.p_raw:.2f})" in str(
            pane.border_subtitle
        )


async def test_worker_batches_tokens_into_few_messages(tmp_path: Path) -> None:
    engine = FakeEngine(end=StopKind.MAX_TOKENS)
    settings = make_app(engine, tmp_path).settings.model_copy(
        update={"sampling": SamplingParams(max_new_tokens=200)}
    )
    app = TokendialApp(settings, engine_factory=lambda config: engine, batch_s=3600.0)
    batches: list[TokensStreamed] = []

    def hook(message: Message) -> None:
        if isinstance(message, TokensStreamed):
            batches.append(message)

    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await wait_ready(pilot)
        await send(pilot, "go")
        await reply_done(pilot)
    tokens = [event for batch in batches for event in batch.tokens]
    assert [event.index for event in tokens] == list(range(200))  # every token, in order, once
    # The first token goes out at once (time to first token); the rest waits for the batch window,
    # which here outlasts the reply, so it comes in one message with the end of the reply.
    assert [len(batch.tokens) for batch in batches if batch.tokens] == [1, 199]
