"""Matrix row 5, interaction under stress: cancel at every phase, parameters changed many times a
second while streaming, terminal resizes mid-reply, a second prompt while one runs, an exception
inside the engine thread. Real model where it matters, the FakeEngine where timing must be exact."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from settings.sampling import SamplingMode, SamplingParams
from tests.fakes import FakeEngine
from tests.reliability.reliability_support import (
    SIZE,
    finished,
    last_done,
    make_app,
    real_app,
    record_notifications,
    reply_done,
    screen_text,
    send,
    send_and_hold,
    wait_for,
    wait_ready,
)
from tui.app import TokendialApp
from tui.engine.events import ChatMessage, EngineEvent, PromptProgress, ReplyDone, StopKind, TokenEvent
from tui.engine.live import LiveParams
from tui.engine.llama_engine import LlamaEngine
from tui.widgets.chat_view import AssistantMessage, UserMessage
from tui.widgets.status_bar import ModelState
from tui.worker import ReplyFinished

REPLY = "Hello, I am a small model.\nAsk me anything!"


async def still_usable(pilot: Pilot[Any], app: TokendialApp) -> None:
    """A new prompt gets a complete reply."""
    await send(pilot, "Are you still there?")
    await finished(pilot)
    assert last_done(app).stop.kind in (StopKind.EOS, StopKind.MAX_TOKENS)


# -- cancel at every phase -------------------------------------------------------------------


async def test_cancel_while_the_model_loads(tmp_path: Path) -> None:
    """A prompt sent during loading waits; Esc cancels it; once loaded, the app works."""
    gate = threading.Event()
    fake = FakeEngine()
    app = make_app(fake, tmp_path, gate=gate)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.model_state is ModelState.LOADING
        await send(pilot, "Hello early")
        await pilot.pause()
        assert app.busy and app.chat_view.query(UserMessage)
        await pilot.press("escape")
        gate.set()
        await reply_done(pilot)
        done = last_done(app)
        assert done.stop.kind is StopKind.CANCELLED and done.generated == 0
        await still_usable(pilot, app)


async def test_quit_while_the_model_loads_does_not_hang(tmp_path: Path) -> None:
    gate = threading.Event()
    fake = FakeEngine()
    app = make_app(fake, tmp_path, gate=gate)
    started = time.monotonic()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.model_state is ModelState.LOADING
    assert time.monotonic() - started < 8  # the gate would hold the loader for 10 s
    gate.set()
    for _ in range(500):  # the loader finishes later, sees the stop and closes its engine
        if fake.closed:
            break
        time.sleep(0.01)
    assert fake.closed


def test_cancel_during_prompt_evaluation_real_model(real_engine: LlamaEngine) -> None:
    """Cancel seen at the first check after a prompt batch: no token, stop reason CANCELLED."""
    cancel = threading.Event()
    events: list[EngineEvent] = []
    prompt = "Summarise this. " + "The cat sat on the mat. " * 60
    for event in real_engine.stream_reply(
        [ChatMessage("user", prompt)], LiveParams(SamplingParams()), cancel
    ):
        events.append(event)
        if isinstance(event, PromptProgress):
            cancel.set()
    done = events[-1]
    assert isinstance(done, ReplyDone)
    assert done.stop.kind is StopKind.CANCELLED and done.generated == 0
    assert not any(isinstance(e, TokenEvent) for e in events)


async def test_cancel_before_the_first_token_in_the_app(tmp_path: Path) -> None:
    fake = FakeEngine(hold_at=0)
    app = make_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send_and_hold(pilot, fake, "hi", "prompt read")
        await pilot.press("escape")
        await reply_done(pilot)
        done = last_done(app)
        assert done.stop.kind is StopKind.CANCELLED and done.text == ""
        message = list(app.chat_view.query(AssistantMessage))[-1]
        assert "cancelled" in str(message.query_one(".badge", Static).render()).lower()
        fake.hold_at = None
        await still_usable(pilot, app)


@pytest.mark.real_model
async def test_cancel_while_streaming_real_model_keeps_the_partial_reply(
    real_engine: LlamaEngine, tmp_path: Path
) -> None:
    app = real_app(real_engine, tmp_path, max_new_tokens=300, temperature=1.0, seed=7)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "Tell me a long story about a lighthouse.")
        await wait_for(pilot, lambda: len(app.records[1].events) >= 5, "some tokens", limit=6000)
        await pilot.press("escape")
        await finished(pilot)
        done = last_done(app)
        assert done.stop.kind is StopKind.CANCELLED
        assert 5 <= done.generated < 300 and done.text
        assert app.history[-1] == ChatMessage("assistant", done.text)
        chat_id = app.chat_session.chat_id
        assert chat_id is not None
        stored = app.chat_session.store.load_chat(chat_id).messages[-1]
        assert stored.text == done.text and stored.reply is not None
        app.panel.set_params(SamplingParams(mode=SamplingMode.GREEDY, max_new_tokens=8))
        await still_usable(pilot, app)


async def test_cancel_just_after_the_end_changes_nothing(tmp_path: Path) -> None:
    """Esc racing the end: the engine is done, the UI has not shown it yet; then Esc after it."""
    app = make_app(FakeEngine(), tmp_path)
    cancels: list[bool] = []

    def cancel_on_arrival(message: ReplyFinished) -> None:  # runs before the UI shows the end
        app.action_cancel_reply()
        cancels.append(True)

    app.reply_observers.insert(0, cancel_on_arrival)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hi")
        await reply_done(pilot)
        await pilot.press("escape", "escape")
        await pilot.pause()
        done = last_done(app)
        assert cancels and done.stop.kind is StopKind.EOS and done.text == REPLY
        message = list(app.chat_view.query(AssistantMessage))[-1]
        assert "cancel" not in str(message.query_one(".badge", Static).render()).lower()
        app.reply_observers.remove(cancel_on_arrival)
        await still_usable(pilot, app)


# -- live parameters hammered while streaming ---------------------------------------------------


def test_params_changed_every_millisecond_real_model(real_engine: LlamaEngine) -> None:
    live = LiveParams(SamplingParams(max_new_tokens=32, seed=3))
    stop = threading.Event()
    variants = [
        SamplingParams(temperature=t, top_k=k, top_p=p, min_p=m, max_new_tokens=32, seed=3, mode=mode)
        for t, k, p, m, mode in [
            (0.2, 5, 0.5, 0.0, SamplingMode.SAMPLE),
            (1.5, 0, 1.0, 0.2, SamplingMode.SAMPLE),
            (0.8, 40, 0.95, 0.05, SamplingMode.GREEDY),
            (5.0, 1000, 0.01, 1.0, SamplingMode.SAMPLE),
        ]
    ]

    def hammer() -> None:
        i = 0
        while not stop.is_set():
            live.set(variants[i % len(variants)])
            i += 1
            time.sleep(0.001)

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        events = list(
            real_engine.stream_reply([ChatMessage("user", "Count to twenty.")], live, threading.Event())
        )
    finally:
        stop.set()
        thread.join()
    done = events[-1]
    assert isinstance(done, ReplyDone)
    assert done.stop.kind in (StopKind.EOS, StopKind.MAX_TOKENS), done.stop
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    versions = [t.params_version for t in tokens]
    assert versions == sorted(versions) and len(set(versions)) > 1
    assert set(versions) <= set(done.params)
    assert "".join(t.text for t in tokens) == done.text


@pytest.mark.real_model
async def test_panel_keys_held_down_while_streaming_real_model(
    real_engine: LlamaEngine, tmp_path: Path
) -> None:
    app = real_app(real_engine, tmp_path, max_new_tokens=40, seed=5)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "Write a poem about the sea.")
        await pilot.press("f4")
        for _ in range(3):  # up and down, as fast as keys come
            await pilot.press(*(["up"] * 15), *(["down"] * 15), "pageup", "pagedown")
        await finished(pilot)
        record = app.records[1]
        done = record.done
        assert done is not None and done.stop.kind in (StopKind.EOS, StopKind.MAX_TOKENS), done
        versions = [e.params_version for e in record.events]
        assert versions == sorted(versions)
        assert set(versions) <= set(done.params) | set(app.params_by_version)
        assert app.live.params == app.panel.params


# -- resizes, a second prompt, an engine that fails ------------------------------------------


async def test_resizing_the_terminal_during_a_reply(tmp_path: Path) -> None:
    fake = FakeEngine(end=StopKind.MAX_TOKENS, delay_s=0.002)
    app = make_app(fake, tmp_path, max_new_tokens=300)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "go")
        for size in [(80, 24), (20, 6), (200, 60), (40, 10), (120, 40), (10, 3), (120, 40)]:
            await pilot.resize_terminal(*size)
            await pilot.pause(0.02)
            if size == (40, 10):
                await pilot.press("ctrl+t")
        await reply_done(pilot)
        done = last_done(app)
        assert done.stop.kind is StopKind.MAX_TOKENS and done.generated == 300
        assert app.records[1].streamed_text == done.text
        await pilot.press("ctrl+t")
        await pilot.pause()
        message = list(app.chat_view.query(AssistantMessage))[-1]
        assert message.markdown.source == done.text
        assert "Tokens" in screen_text(app) or "assistant" in screen_text(app)


async def test_a_second_prompt_while_one_runs_is_refused_and_kept(tmp_path: Path) -> None:
    fake = FakeEngine(hold_at=3)
    app = make_app(fake, tmp_path)
    notices = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send_and_hold(pilot, fake, "first", "streaming")
        await send(pilot, "second, typed while the first runs")
        await pilot.press("ctrl+r", "ctrl+l", "f2")
        await pilot.pause()
        assert app.prompt.text == "second, typed while the first runs"  # not lost
        assert [m.content for m in app.history] == ["first"]
        assert len(fake.calls) == 1
        assert sum("A reply is being generated" in n for n in notices) >= 3
        fake.hold_at = None
        fake.release()
        await reply_done(pilot)
        await pilot.press("enter")  # now it goes
        await reply_done(pilot)
        assert [m.content for m in app.history if m.role == "user"] == [
            "first",
            "second, typed while the first runs",
        ]


async def test_new_chat_while_a_reply_runs(tmp_path: Path) -> None:
    fake = FakeEngine(hold_at=3)
    app = make_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send_and_hold(pilot, fake, "first", "streaming")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: not app.busy, "cancelled reply ended")
        assert app.history == [] and not app.chat_view.query(AssistantMessage)
        fake.hold_at = None
        await still_usable(pilot, app)


class FailingEngine(FakeEngine):
    """Raises in the middle of a reply (after ``fail_after`` tokens), once."""

    fail_after: int = 3
    failures: int = 0

    def stream_reply(
        self,
        messages: Sequence[ChatMessage],
        live: LiveParams,
        cancel: threading.Event,
        *,
        continue_from: Sequence[int] = (),
        raw: bool = False,
    ) -> Iterator[EngineEvent]:
        count = 0
        for event in super().stream_reply(messages, live, cancel, continue_from=continue_from, raw=raw):
            if isinstance(event, TokenEvent):
                count += 1
                if count > self.fail_after and self.failures == 0:
                    self.failures += 1
                    raise RuntimeError("boom in the engine thread")
            yield event


class SilentEngine(FakeEngine):
    """Ends a reply without its final ReplyDone (breaking the engine contract), once."""

    broken: bool = True

    def stream_reply(
        self,
        messages: Sequence[ChatMessage],
        live: LiveParams,
        cancel: threading.Event,
        *,
        continue_from: Sequence[int] = (),
        raw: bool = False,
    ) -> Iterator[EngineEvent]:
        for event in super().stream_reply(messages, live, cancel, continue_from=continue_from, raw=raw):
            if isinstance(event, ReplyDone) and self.broken:
                self.broken = False
                return
            yield event


@pytest.mark.parametrize(
    ("engine", "phrase"),
    [(FailingEngine(), "RuntimeError: boom in the engine thread"), (SilentEngine(), "without a final event")],
    ids=["raises", "no final event"],
)
async def test_an_engine_failure_is_shown_and_the_app_stays_usable(
    engine: FakeEngine, phrase: str, tmp_path: Path
) -> None:
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hi")
        await reply_done(pilot)
        done = last_done(app)
        assert done.stop.kind is StopKind.ERROR and phrase in (done.stop.message or "")
        assert done.text == "Hello, I" if isinstance(engine, FailingEngine) else done.text == REPLY
        message = list(app.chat_view.query(AssistantMessage))[-1]
        assert "error" in str(message.query_one(".badge", Static).render()).lower()
        assert phrase.split(":")[0] in screen_text(app)
        await still_usable(pilot, app)


# -- `tokendial generate` interrupted with Ctrl-C (a real SIGINT) ------------------------------


def _generate_process(model_path: Path, *extra: str) -> Any:
    import subprocess
    import sys

    prompt = "Tell me a very long story about the sea."
    command = [sys.executable, "-u", "-m", "tui.cli", "generate", prompt, "--model-path", str(model_path)]
    command += ["--sampling.max-new-tokens", "2000", "--sampling.seed", "1", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.real_model
def test_ctrl_c_while_generate_streams(model_path: Path) -> None:
    import signal

    process = _generate_process(model_path)
    assert process.stdout is not None
    first = process.stdout.read(20)  # the reply has started
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert first and process.returncode == 0  # it was a segmentation fault (-11): see MATRIX.md
    assert "[cancelled" in err.lower() and "Traceback" not in err


@pytest.mark.real_model
def test_ctrl_c_while_generate_loads(model_path: Path, tmp_path: Path) -> None:
    """SIGINT while llama.cpp is loading the model: a clean stop (exit 130), no traceback, no reply.

    llama.cpp's log goes to a FIFO (TOKENDIAL_LLAMA_LOG). The test reads the first lines and closes
    it, so the next log line blocks the load inside llama.cpp (its writer waits for a reader): the
    signal surely arrives mid-load, and in Python code that llama.cpp called back.
    """
    import os
    import signal
    import subprocess
    import sys

    log = tmp_path / "llama.log"
    os.mkfifo(log)
    command = [sys.executable, "-u", "-m", "tui.cli", "generate", "Hi", "--model-path", str(model_path)]
    env = {**os.environ, "TOKENDIAL_LLAMA_LOG": str(log)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        with open(log, "rb") as fifo:  # returns once the loader has opened it to write its first line
            first = fifo.read()  # up to the writer's close
        time.sleep(0.2)  # the loader is blocked on its next line now
        assert process.poll() is None
        process.send_signal(signal.SIGINT)
        drained = threading.Thread(target=_drain_fifo, args=(log, process), daemon=True)
        drained.start()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert first
    assert process.returncode == 130, err
    assert "interrupted" in err and out == ""
    assert "Traceback" not in err


def _drain_fifo(path: Path, process: Any) -> None:
    """Read the FIFO until the process has exited (a writer blocks while no one reads)."""
    import os

    while process.poll() is None:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            while process.poll() is None:
                try:
                    if not os.read(fd, 65536):
                        time.sleep(0.005)
                except BlockingIOError:
                    time.sleep(0.005)
        finally:
            os.close(fd)


@pytest.mark.real_model
def test_quit_the_app_in_the_middle_of_a_reply(model_path: Path, tmp_path: Path) -> None:
    """The engine thread is decoding when the app exits: no crash, and the partial reply is saved."""
    import subprocess
    import sys

    from tui.store import ChatStore, default_db_path

    script = Path(__file__).with_name("quit_mid_reply.py")
    result = subprocess.run(
        [sys.executable, "-X", "faulthandler", str(script), str(model_path), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("streamed ")
    store = ChatStore(default_db_path(tmp_path))
    try:
        [summary] = store.list_chats()
        reply = store.load_chat(summary.id).messages[-1]
    finally:
        store.close()
    assert reply.role == "assistant" and reply.text


@pytest.mark.parametrize(
    "opener", ["f1", "f2", "f3", "ctrl+p"], ids=["help", "model picker", "chats", "palette"]
)
async def test_a_dialog_opened_while_a_reply_streams(opener: str, tmp_path: Path) -> None:
    """Tokens keep arriving under the help, the picker, the chat list or the palette; app keys
    pressed there reach the main screen. This crashed the app (widgets looked up on the dialog)."""
    fake = FakeEngine(end=StopKind.MAX_TOKENS, delay_s=0.005)
    app = make_app(fake, tmp_path, max_new_tokens=120)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "go")
        await wait_for(pilot, lambda: bool(app.records[1].events), "streaming")
        await pilot.press(opener)
        await pilot.pause()
        assert app.screen is not app.main_screen or opener == "f2"  # F2 is refused while busy
        for key in ("ctrl+t", "ctrl+o", "ctrl+g", "left_square_bracket", "f4", "ctrl+r"):
            await pilot.press(key)
            await pilot.pause(0.02)
        await wait_for(pilot, lambda: not app.busy, "reply ended under the dialog")
        while app.screen is not app.main_screen:
            await pilot.press("escape")
            await pilot.pause()
        await reply_done(pilot)
        done = last_done(app)
        assert done.stop.kind is StopKind.MAX_TOKENS and done.generated == 120
        message = list(app.chat_view.query(AssistantMessage))[-1]
        assert message.has_class("finished") and message.markdown.source == done.text
        await still_usable(pilot, app)
