"""The app on the real default model: a reply streams, a live change is marked, the badges are real."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import Static

from settings.config import Settings
from settings.sampling import SamplingMode, SamplingParams
from tests.tui.tui_app_helpers import SIZE, reply_done, send, wait_for
from tui.app import TokendialApp
from tui.engine.events import ChatMessage, EngineEvent, ModelInfo, StopKind, TokenEvent
from tui.engine.live import LiveParams
from tui.engine.llama_engine import load_engine
from tui.engine.protocol import ChatEngine, LoadConfig
from tui.widgets.chat_view import AssistantMessage
from tui.widgets.sampling_panel import StepInput
from tui.widgets.status_bar import ModelState

pytestmark = pytest.mark.real_model

LIMIT = 2000  # pauses of 10 ms: generous, the machine may be busy


class PausingEngine:
    """The real engine, its reply paused after ``after`` tokens until ``resume`` is set. The reply is a
    lazy generator, so llama.cpp waits too: a live change made meanwhile lands on the next token."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.engine: ChatEngine | None = None
        self.paused = threading.Event()
        self.resume = threading.Event()

    def load(self, config: LoadConfig) -> PausingEngine:
        """The app's engine factory: load the real engine and wrap it."""
        self.engine = load_engine(config)
        return self

    @property
    def info(self) -> ModelInfo:
        """The real engine's facts."""
        assert self.engine is not None
        return self.engine.info

    def stream_reply(
        self,
        messages: Sequence[ChatMessage],
        live: LiveParams,
        cancel: threading.Event,
        *,
        continue_from: Sequence[int] = (),
        raw: bool = False,
    ) -> Iterator[EngineEvent]:
        """The real reply, held after ``after`` tokens."""
        assert self.engine is not None
        for event in self.engine.stream_reply(messages, live, cancel, continue_from=continue_from, raw=raw):
            yield event
            if isinstance(event, TokenEvent) and event.index + 1 == self.after:
                self.paused.set()
                while not self.resume.wait(0.01) and not cancel.is_set():
                    pass

    def count_tokens(self, text: str) -> int:
        """The real engine's count."""
        assert self.engine is not None
        return self.engine.count_tokens(text)

    def close(self) -> None:
        """Free the real engine."""
        if self.engine is not None:
            self.engine.close()


def real_app(
    model_path: Path,
    tmp_path: Path,
    engine_factory: Callable[[LoadConfig], ChatEngine] | None = None,
    **sampling: object,
) -> TokendialApp:
    """The app on ``model_path`` with its default (llama.cpp) engine factory, or ``engine_factory``."""
    settings = Settings(
        model_path=model_path,
        data_dir=tmp_path / "data",
        n_ctx=1024,
        sampling=SamplingParams(**sampling),
    )
    if engine_factory is None:
        return TokendialApp(settings, config_path=tmp_path / "config.toml")
    return TokendialApp(settings, engine_factory=engine_factory, config_path=tmp_path / "config.toml")


async def test_real_model_reply_hits_the_token_limit_with_a_live_change(
    model_path: Path, tmp_path: Path
) -> None:
    engine = PausingEngine(after=3)
    app = real_app(model_path, tmp_path, engine.load, max_new_tokens=24, temperature=0.7, seed=7)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state is ModelState.READY, "model loaded", LIMIT)
        assert app.status.info is not None
        assert app.status.info.quantization == "Q4_1"
        await send(pilot, "Tell me a long story about a dragon.")
        await wait_for(pilot, engine.paused.is_set, "first tokens", LIMIT)
        field = app.panel.query_one("#field-temperature", StepInput)
        field.focus()
        await pilot.press("pageup")  # +0.5 while the reply is being generated (held after 3 tokens)
        await wait_for(pilot, lambda: app.live.version == 1, "the change made", LIMIT)
        engine.resume.set()
        await wait_for(pilot, lambda: not app.busy, "reply finished", LIMIT)
        await reply_done(pilot)
        record = app.records[1]
        assert record.done is not None
        done = record.done
        assert done.stop.kind is StopKind.MAX_TOKENS  # SmolLM2 does not finish a story in 24 tokens
        assert done.generated == 24
        versions = [event.params_version for event in record.events]
        assert versions == sorted(versions)
        assert versions[0] == 0
        message = list(app.chat_view.query(AssistantMessage))[-1]
        assert message.markdown.source.strip()
        assert "stopped at 24/24" in str(message.query_one(".badge", Static).render())
        assert versions == [0] * 3 + [1] * 21  # the change landed on the 4th token
        await pilot.press("ctrl+t")
        await pilot.pause()
        rendered = app.token_view.render()
        assert isinstance(rendered, Text)
        assert "⚙ temperature 0.7→1.2" in rendered.plain


async def test_real_model_greedy_short_answer_ends_on_eos(model_path: Path, tmp_path: Path) -> None:
    # greedy as the "greedy" preset has it: penalties apply in greedy mode too (issue 15), and the
    # default repeat penalty of 1.1 pushes SmolLM2 away from repeating the "2" of the question
    app = real_app(model_path, tmp_path, mode=SamplingMode.GREEDY, repeat_penalty=1.0, max_new_tokens=200)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state is ModelState.READY, "model loaded", LIMIT)
        await send(pilot, "What is 2 + 2? Answer in one short sentence.")
        await wait_for(pilot, lambda: not app.busy, "reply finished", LIMIT)
        await reply_done(pilot)
        done = app.records[1].done
        assert done is not None
        assert done.stop.kind is StopKind.EOS
        assert done.stop.token_text == "<|im_end|>"
        assert "4" in done.text
        await pilot.press("ctrl+t")
        await pilot.pause()
        rendered = app.token_view.render()
        assert isinstance(rendered, Text)
        assert "END OF SEQUENCE  <|im_end|>" in rendered.plain


async def test_real_model_escape_cancels_and_keeps_the_partial_reply(
    model_path: Path, tmp_path: Path
) -> None:
    app = real_app(model_path, tmp_path, mode=SamplingMode.GREEDY, max_new_tokens=500)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state is ModelState.READY, "model loaded", LIMIT)
        await send(pilot, "Write a very long essay about the history of Rome, with many sections.")
        await wait_for(pilot, lambda: len(app.records[1].events) >= 5, "first tokens", LIMIT)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.busy, "reply finished", LIMIT)
        await reply_done(pilot)
        done = app.records[1].done
        assert done is not None
        assert done.stop.kind is StopKind.CANCELLED
        assert 5 <= done.generated < 500
        assert done.text and app.history[-1].content == done.text
        message = list(app.chat_view.query(AssistantMessage))[-1]
        assert f"cancelled after {done.generated} tokens" in str(message.query_one(".badge", Static).render())


async def test_real_model_context_gauge_counts_while_streaming_and_ends_at_n_ctx(
    model_path: Path, tmp_path: Path
) -> None:
    """The gauge follows the reply as it streams, and a reply that fills the context shows n_ctx
    (its last token was drawn but had no room: prompt + generated is n_ctx + 1)."""
    settings = Settings(
        model_path=model_path,
        data_dir=tmp_path / "data",
        n_ctx=256,
        sampling=SamplingParams(mode=SamplingMode.GREEDY, max_new_tokens=1000),
    )
    app = TokendialApp(settings, config_path=tmp_path / "config.toml")
    seen: list[int] = []

    def streaming_gauge() -> bool:
        record = app.records.get(1)
        if app.busy and record is not None and record.events:
            seen.append(app.status.context_used)
        return not app.busy and record is not None and record.done is not None

    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state is ModelState.READY, "model loaded", LIMIT)
        await send(pilot, "Write a very long essay about the history of Rome, with many sections.")
        await wait_for(pilot, streaming_gauge, "reply finished", LIMIT * 3)
        await reply_done(pilot)
        done = app.records[1].done
        assert done is not None and done.stop.kind is StopKind.CONTEXT_FULL
        assert done.prompt_tokens + done.generated == 257
        assert app.status.context_used == 256
        assert "256/256" in str(app.status.render())
        # While it streamed, the gauge counted up from the prompt (not only at the end).
        live = [used for used in seen if used > 0]
        assert live and min(live) > done.prompt_tokens - 1 and min(live) < 256
