"""Matrix row 3, prompts: a 1 MB paste, a chat longer than the context, empty and blank prompts,
control characters, right-to-left text, emoji and CJK split across tokens (on the real model)."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import pytest
from textual import events

from settings.sampling import SamplingMode, SamplingParams
from tests.fakes import FakeEngine
from tests.reliability.reliability_support import (
    SIZE,
    finished,
    last_done,
    make_app,
    make_settings,
    real_app,
    record_notifications,
    send,
    wait_ready,
)
from tui.app import TokendialApp
from tui.core.text import clean
from tui.engine.events import ChatMessage, PromptTrimmed, ReplyDone, StopKind, TokenEvent
from tui.engine.live import LiveParams
from tui.engine.llama_engine import LlamaEngine
from tui.headless import run_generate
from tui.widgets.chat_view import USER_DISPLAY_LIMIT, AssistantMessage, UserMessage

pytestmark = pytest.mark.real_model
GREEDY = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0, max_new_tokens=12)
CONTROL = "bell\x07 nul\x00 esc\x1b[31m del\x7f csi\x9b1m cr\r form\x0c end"
RTL = "مرحبا بالعالم — שלום עולם \u202eevil\u202c \u200fmark"
EMOJI_CJK = "👩‍👩‍👧‍👦 🇫🇷 👍🏽 🎉 日本語 中文 한국어 ｶﾀｶﾅ e\u0301 ÿ"


def greedy_app(engine: LlamaEngine, tmp_path: Path, **sampling: Any) -> TokendialApp:
    """The app on the shared real engine, greedy with short replies unless overridden."""
    app: TokendialApp = real_app(engine, tmp_path, **{**GREEDY.model_dump(), **sampling})
    return app


async def test_megabyte_paste_is_kept_refused_clearly_and_the_chat_goes_on(
    real_engine: LlamaEngine, tmp_path: Path
) -> None:
    big = ("All work and no play makes Jack a dull boy. " * 25_000)[:1_000_000]
    app = greedy_app(real_engine, tmp_path)
    notices = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        app.prompt.focus()
        app.post_message(events.Paste(big))  # as the terminal driver delivers a bracketed paste
        await pilot.pause()
        assert app.prompt.text == big
        assert not app.prompt.soft_wrap  # a megabyte is not soft-wrapped (that takes seconds)
        await pilot.press("enter")
        await finished(pilot)
        assert app.prompt.text == "" and app.prompt.soft_wrap
        done = last_done(app)
        assert done.stop.kind is StopKind.ERROR
        assert "too long for the context" in (done.stop.message or "")
        shown = str(app.chat_view.query_one(UserMessage).render())
        assert len(shown) < USER_DISPLAY_LIMIT + 100 and "more characters not shown (sent in full)" in shown
        # nothing lost: the whole paste is in the conversation and in the chat database
        assert app.history[0].content == big
        chat_id = app.chat_session.chat_id
        assert chat_id is not None
        assert app.chat_session.store.load_chat(chat_id).messages[0].text == big
        # the next prompt works: the oversized turn is left out, with a notice
        await send(pilot, "Say hi.")
        await finished(pilot)
        assert last_done(app).stop.kind in (StopKind.EOS, StopKind.MAX_TOKENS)
        assert any("oldest messages were left out" in m for m in notices), notices


async def test_chat_longer_than_the_context_drops_the_oldest_turns_with_a_notice(
    real_engine: LlamaEngine, tmp_path: Path
) -> None:
    words = " ".join(f"item{i}" for i in range(60))
    app = greedy_app(real_engine, tmp_path, max_new_tokens=8)
    notices = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        for turn in range(3):
            await send(pilot, f"Turn {turn}. Remember these: {words}")
            await finished(pilot)
            assert last_done(app).stop.kind in (StopKind.EOS, StopKind.MAX_TOKENS)
        assert any("longer than the context (512 tokens)" in m for m in notices), notices
        assert len(app.history) == 6  # the transcript keeps every turn


def test_engine_reports_trimming_and_keeps_the_system_prompt(real_engine: LlamaEngine) -> None:
    long = "word " * 150
    history = [ChatMessage("system", "Be brief.")]
    for turn in range(3):
        history += [ChatMessage("user", f"{turn} {long}"), ChatMessage("assistant", "ok")]
    history.append(ChatMessage("user", "Say hi."))
    events = list(real_engine.stream_reply(history, LiveParams(GREEDY), threading.Event()))
    trimmed = [e for e in events if isinstance(e, PromptTrimmed)]
    assert trimmed and trimmed[0].dropped_messages >= 2 and trimmed[0].prompt_tokens <= 512
    done = events[-1]
    assert isinstance(done, ReplyDone) and done.stop.kind is not StopKind.ERROR


@pytest.mark.parametrize(
    "blank", ["", "   ", "\n\n", " \t\n  \n"], ids=["empty", "spaces", "newlines", "mixed"]
)
async def test_empty_and_blank_prompts_are_not_sent(blank: str, tmp_path: Path) -> None:
    fake = FakeEngine()
    app = make_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, blank)
        await pilot.pause()
        assert fake.calls == [] and app.history == [] and not app.chat_view.query(UserMessage)
        assert not app.busy


@pytest.mark.parametrize("blank", ["", "  \n\t"])
def test_generate_refuses_a_blank_prompt(blank: str, tmp_path: Path) -> None:
    err = io.StringIO()
    assert run_generate(make_settings(tmp_path), blank, False, stdout=io.StringIO(), stderr=err) == 2
    assert err.getvalue() == "tokendial generate: the prompt is empty.\n"


@pytest.mark.parametrize("prompt", [CONTROL, RTL, EMOJI_CJK], ids=["control", "rtl", "emoji-cjk"])
def test_unusual_text_reaches_the_model_exactly(prompt: str, real_engine: LlamaEngine) -> None:
    """The prompt's tokens spell the exact text, and the reply ends normally."""
    ids = real_engine.tokenize(prompt)
    assert b"".join(real_engine._token_bytes(t) for t in ids) == prompt.encode("utf-8")
    events = list(
        real_engine.stream_reply([ChatMessage("user", prompt)], LiveParams(GREEDY), threading.Event())
    )
    done = events[-1]
    assert isinstance(done, ReplyDone)
    assert done.stop.kind in (StopKind.EOS, StopKind.MAX_TOKENS), done.stop
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    assert "".join(t.text for t in tokens) == done.text


def test_characters_split_across_tokens_are_reassembled_exactly(real_engine: LlamaEngine) -> None:
    """Byte-level tokens of multi-byte characters, fed as a reply, decode to exactly the text."""
    ids = real_engine.tokenize(EMOJI_CJK)
    assert len(ids) > len(EMOJI_CJK.split())  # the characters really are split over several tokens
    params = SamplingParams(mode=SamplingMode.GREEDY, max_new_tokens=len(ids))
    events = list(
        real_engine.stream_reply(
            [ChatMessage("user", "Hi")], LiveParams(params), threading.Event(), continue_from=ids
        )
    )
    done = events[-1]
    assert isinstance(done, ReplyDone)
    assert done.text == EMOJI_CJK and "\ufffd" not in done.text


async def test_unusual_prompts_in_the_app(real_engine: LlamaEngine, tmp_path: Path) -> None:
    """Shown safely, kept exactly, answered normally; the streamed text equals the final text."""
    app = greedy_app(real_engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        for prompt in (CONTROL, RTL, EMOJI_CJK, "Repeat exactly: 🎉🎉 日本語"):
            await send(pilot, prompt)
            await finished(pilot)
            done = last_done(app)
            assert done.stop.kind in (StopKind.EOS, StopKind.MAX_TOKENS), done.stop
            message = list(app.chat_view.query(AssistantMessage))[-1]
            assert message.record.streamed_text == done.text
            assert message.markdown.source == clean(done.text)
            user = list(app.chat_view.query(UserMessage))[-1]
            sent = as_typed(prompt)
            assert user.content == sent and str(user.render()) == clean(sent)
        prompts = [CONTROL, RTL, EMOJI_CJK, "Repeat exactly: 🎉🎉 日本語"]
        assert [m.content for m in app.history if m.role == "user"] == [as_typed(p) for p in prompts]


def as_typed(prompt: str) -> str:
    """``prompt`` as the prompt box sends it: its line breaks (\\r, a form feed...) become \\n."""
    return "\n".join(prompt.splitlines())


def test_generate_prompt_longer_than_the_context(model_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from tui.cli import main

    prompt = "word " * 3000
    code = main(["generate", prompt, "--model-path", str(model_path), "--n-ctx", "256"])
    out, err = capfd.readouterr()
    assert code == 1
    assert "too long for the context" in err and "n_ctx" in err
    assert "Traceback" not in out + err


def test_system_prompt_longer_than_the_context_is_named(real_engine: LlamaEngine) -> None:
    """A huge system prompt makes every reply fail: the message says it is the system prompt."""
    messages = [ChatMessage("system", "word " * 1000), ChatMessage("user", "hi")]
    events = list(real_engine.stream_reply(messages, LiveParams(GREEDY), threading.Event()))
    done = events[-1]
    assert isinstance(done, ReplyDone) and done.stop.kind is StopKind.ERROR
    assert (done.stop.message or "").startswith("The system prompt is too long for the context")
