"""Section 4 (the app) and the app half of section 5: the real TokendialApp, headless, real engine.

The app runs under ``App.run_test`` (headless: layout and rendering happen, nothing is written to
a terminal). A message hook timestamps the app's messages:

- reply speed in the app: (tokens - 1) / (time the last TokensStreamed batch was dispatched -
  time the first one was), i.e. the speed at which tokens reach the transcript;
- key-press delay: a thread posts a Key into the app's loop the way Textual's input thread does
  (``call_soon_threadsafe``) and the hook sees it arrive at the focused widget;
- the engine alone: the same engine object, called from a thread while the app is idle.

For the long-transcript comparison the engine is handed only the system prompt and the last user
message (:class:`BenchEngine`), so both cases ask the engine for the same work and the difference
is the UI's.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual import events
from textual.message import Message

from tests.bench.common import (
    MAX_TRIES,
    N_CTX,
    N_GEN,
    NOISE,
    OTHERS_LIMIT,
    PROMPT,
    SAMPLING,
    SYSTEM_PROMPT,
    THREADS,
    OthersMeter,
    model_path,
    percentile,
    tokens_per_s,
)

TRANSCRIPT_TOKENS = 5000
KEY_INTERVAL_S = 0.1
"""Mean gap between probe key presses while a reply streams."""
SCREEN_SIZE = (160, 48)


def bench_settings(data_dir: Path) -> Any:
    """Settings for the app under test: the benchmark model, parameters and threads; no user config."""
    from settings.config import Settings, using_config_file

    with using_config_file(data_dir / "no-config.toml"):
        return Settings(
            model_path=model_path(),
            n_ctx=N_CTX,
            n_threads=THREADS,
            top_n=10,
            sampling=SAMPLING,
            system_prompt=SYSTEM_PROMPT,
            data_dir=data_dir,
        )


class BenchEngine:
    """The real engine behind the app, plus timestamps of the tokens as the engine thread pulls them.

    ``close`` does nothing (the benchmark reuses the engine); ``strip_history`` hands the engine
    only the system prompt and the last user message.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.strip_history = True
        self.first = 0.0
        self.last = 0.0
        self.count = 0
        self.streaming = threading.Event()

    @property
    def info(self) -> Any:
        """The real engine's model info."""
        return self.engine.info

    def count_tokens(self, text: str) -> int:
        """Delegated."""
        return int(self.engine.count_tokens(text))

    def close(self) -> None:
        """Kept open: the benchmark closes the real engine itself."""

    def stream_reply(
        self,
        messages: Sequence[Any],
        live: Any,
        cancel: threading.Event,
        *,
        continue_from: Sequence[int] = (),
        raw: bool = False,
    ) -> Iterator[Any]:
        """The real engine's events, timestamped."""
        from tui.engine.events import TokenEvent

        if self.strip_history:
            system = [m for m in messages[:1] if m.role == "system"]
            messages = [*system, messages[-1]]
        self.first = self.last = 0.0
        self.count = 0
        self.streaming.set()
        try:
            for event in self.engine.stream_reply(
                messages, live, cancel, continue_from=continue_from, raw=raw
            ):
                if isinstance(event, TokenEvent):
                    self.last = time.perf_counter()
                    if self.count == 0:
                        self.first = self.last
                    self.count += 1
                yield event
        finally:
            self.streaming.clear()

    @property
    def tok_s(self) -> float:
        """Speed of the last reply as the engine thread saw it."""
        return tokens_per_s(self.first, self.last, self.count)


@dataclass
class Hook:
    """The message hook: timestamps of the messages the benchmark cares about."""

    ready_at: float | None = None
    loaded_at: float | None = None
    batches: list[tuple[float, int]] = field(default_factory=list)
    finished: list[tuple[float, Any]] = field(default_factory=list)
    key_sent: dict[int, float] = field(default_factory=dict)
    key_delays: list[float] = field(default_factory=list)

    def __call__(self, message: Message) -> None:
        from tui.worker import ModelLoaded, ReplyFinished, TokensStreamed

        now = time.perf_counter()
        if isinstance(message, TokensStreamed):
            if message.tokens:
                self.batches.append((now, len(message.tokens)))
        elif isinstance(message, events.Key):
            sent = self.key_sent.get(id(message))
            if sent is not None and message.is_forwarded:
                self.key_delays.append(now - sent)
                del self.key_sent[id(message)]
        elif isinstance(message, ReplyFinished):
            self.finished.append((now, message))
        elif isinstance(message, ModelLoaded):
            self.loaded_at = now
        elif isinstance(message, events.Ready) and self.ready_at is None:
            self.ready_at = now


@dataclass(frozen=True)
class AppRun:
    """One reply in the app."""

    shown_tok_s: float
    """Tokens reaching the transcript per second."""
    engine_tok_s: float
    """The same reply's speed at the engine thread."""
    tokens: int


async def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def _press_keys(app: Any, hook: Hook, engine: BenchEngine, stop: threading.Event, seed: int) -> None:
    """Thread: while tokens stream, post a key every ~KEY_INTERVAL_S like Textual's input thread does."""
    loop = app._loop
    rng = random.Random(seed)
    while not stop.is_set():
        if engine.count > 0 and engine.streaming.is_set():
            key = events.Key("x", "x")
            hook.key_sent[id(key)] = time.perf_counter()
            loop.call_soon_threadsafe(app.post_message, key)
        stop.wait(KEY_INTERVAL_S * (0.5 + rng.random()))


async def app_reply(app: Any, hook: Hook, engine: BenchEngine, *, press_keys: bool = False) -> AppRun:
    """Send the benchmark prompt through the app and wait until the reply is finished on screen."""
    hook.batches.clear()
    hook.finished.clear()
    stop = threading.Event()
    presser: threading.Thread | None = None
    if press_keys:
        presser = threading.Thread(target=_press_keys, args=(app, hook, engine, stop, len(hook.key_delays)))
        presser.start()
    try:
        if not await app.send_prompt(PROMPT):
            raise RuntimeError("the app refused the prompt")
        await _wait_for(lambda: bool(hook.finished), 120, "the reply to finish")
        await _wait_for(lambda: not app.busy, 10, "the app to settle")
    finally:
        stop.set()
        if presser is not None:
            presser.join()
    await asyncio.sleep(0.05)  # let the last forwarded keys arrive
    hook.key_sent.clear()
    if press_keys:
        app.prompt.clear()
    tokens = sum(n for _, n in hook.batches)
    first_at = hook.batches[0][0]
    last_at = hook.batches[-1][0]
    return AppRun(tokens_per_s(first_at, last_at, tokens), engine.tok_s, tokens)


def engine_alone(engine: BenchEngine) -> float:
    """One reply straight from the engine (no app involved), consumer-side speed."""
    import threading as _threading

    from tui.engine.events import ChatMessage
    from tui.engine.live import LiveParams

    messages = [ChatMessage("system", SYSTEM_PROMPT), ChatMessage("user", PROMPT)]
    for _ in engine.stream_reply(messages, LiveParams(SAMPLING), _threading.Event()):
        pass
    return engine.tok_s


def _store_long_chat(app: Any, finished: Any, min_tokens: int = TRANSCRIPT_TOKENS) -> tuple[int, int, int]:
    """Save a chat of >= ``min_tokens`` tokens made of copies of a real exchange (at least one).

    Returns (chat id, its message count, its token count).
    """
    store = app.chat_session.store
    done = finished.done
    tokens = finished.tokens
    per_turn = app.engine_worker.engine.count_tokens(PROMPT) + len(done.token_ids)
    turns = max(-(-min_tokens // per_turn), 1)
    chat_id = store.create_chat(params=SAMPLING)
    for _ in range(turns):
        store.add_user_message(chat_id, PROMPT)
        message_id = store.begin_assistant_message(chat_id, SAMPLING, None)
        store.finish_assistant_message(message_id, done, tokens, None)
    return chat_id, 2 * turns, turns * per_turn


async def _clean_step(
    step: Callable[[], Awaitable[None]], results: UiResults, log: Callable[[str], None]
) -> None:
    """Run a step; repeat it (dropping its samples) while other processes kept the CPUs busy."""
    NOISE.runs += 1
    for attempt in range(1, MAX_TRIES + 1):
        sizes = results.sizes()
        with OthersMeter() as meter:
            await step()
        if meter.share <= OTHERS_LIMIT:
            return
        if attempt == MAX_TRIES:
            NOISE.kept_noisy += 1
            return
        NOISE.repeated += 1
        log(f"ui step {step.__name__}: other processes used {meter.share:.0%} of the CPUs, repeating")
        results.truncate(sizes)
        await asyncio.sleep(1.0)


@dataclass
class UiResults:
    """Everything section 4 measured."""

    engine_alone: list[float] = field(default_factory=list)
    app_empty: list[AppRun] = field(default_factory=list)
    app_long: list[AppRun] = field(default_factory=list)
    app_keys: list[AppRun] = field(default_factory=list)
    app_short: list[AppRun] = field(default_factory=list)
    """The app with one earlier exchange in the chat: the transcript scrolls as the reply grows."""
    key_delays_ms: list[float] = field(default_factory=list)
    transcript_tokens: int = 0

    key_delays: list[float] = field(default_factory=list)
    """Seconds, as the hook records them."""

    def sizes(self) -> tuple[int, ...]:
        """Sample counts, to drop a repeated step's samples."""
        return tuple(len(x) for x in self._lists())

    def truncate(self, sizes: tuple[int, ...]) -> None:
        """Drop the samples added since ``sizes``."""
        for samples, size in zip(self._lists(), sizes, strict=True):
            del samples[size:]

    def _lists(self) -> tuple[list[Any], ...]:
        return (
            self.engine_alone,
            self.app_empty,
            self.app_long,
            self.app_keys,
            self.app_short,
            self.key_delays,
        )

    @property
    def key_p95_ms(self) -> float:
        """95th percentile of the key-press delays."""
        return percentile(self.key_delays_ms, 95)


async def ui_section(runs: int, log: Callable[[str], None]) -> UiResults:
    """Interleaved rounds of: engine alone, app (empty chat), app (long chat), app with key presses."""
    from tui.app import TokendialApp
    from tui.core.loading import load_config
    from tui.engine.llama_engine import load_engine

    results = UiResults()
    with tempfile.TemporaryDirectory(prefix="tokendial-bench-") as tmp:
        settings = bench_settings(Path(tmp))
        real = load_engine(load_config(settings))
        engine = BenchEngine(real)
        app = TokendialApp(settings, engine_factory=lambda _config: engine)
        hook = Hook(key_delays=results.key_delays)
        try:
            async with app.run_test(headless=True, size=SCREEN_SIZE, message_hook=hook):
                await _wait_for(lambda: hook.loaded_at is not None, 60, "the model to load")
                warm = await app_reply(app, hook, engine)
                if warm.tokens != N_GEN:
                    log(f"warning: the app's reply had {warm.tokens} tokens, not {N_GEN}")
                long_id, keep, results.transcript_tokens = _store_long_chat(app, hook.finished[-1][1])
                short_id, short_keep, _ = _store_long_chat(app, hook.finished[-1][1], min_tokens=1)

                async def empty() -> None:
                    await app.action_new_chat()
                    results.app_empty.append(await app_reply(app, hook, engine))

                async def long() -> None:
                    if not await app.open_stored_chat(long_id):
                        raise RuntimeError("could not open the long chat")
                    results.app_long.append(await app_reply(app, hook, engine))
                    app.chat_session.store.truncate_chat(long_id, keep)

                async def keys() -> None:
                    await app.action_new_chat()
                    results.app_keys.append(await app_reply(app, hook, engine, press_keys=True))

                async def short() -> None:
                    if not await app.open_stored_chat(short_id):
                        raise RuntimeError("could not open the short chat")
                    results.app_short.append(await app_reply(app, hook, engine))
                    app.chat_session.store.truncate_chat(short_id, short_keep)

                async def alone() -> None:
                    results.engine_alone.append(await asyncio.to_thread(engine_alone, engine))

                steps = [alone, empty, long, keys, short]
                for round_no in range(1, runs + 1):
                    shift = round_no % len(steps)
                    for step in steps[shift:] + steps[:shift]:
                        await _clean_step(step, results, log)
                    log(f"ui round {round_no}/{runs} done")
                results.key_delays_ms = [d * 1000.0 for d in hook.key_delays]
                await app.action_new_chat()
        finally:
            real.close()
    return results


async def startup_and_one_reply(since_start: Callable[[], float]) -> dict[str, Any]:
    """For a fresh process: the real app with its default engine factory; time to screen and model."""
    from tui.app import TokendialApp

    with tempfile.TemporaryDirectory(prefix="tokendial-bench-") as tmp:
        settings = bench_settings(Path(tmp))
        app = TokendialApp(settings)
        created = since_start()
        hook = Hook()
        marks: dict[str, float] = {}
        t_ref = time.perf_counter()
        offset = since_start()

        def at(t: float) -> float:
            return offset + (t - t_ref)

        async with app.run_test(headless=True, size=SCREEN_SIZE, message_hook=hook):
            await _wait_for(lambda: hook.ready_at is not None, 60, "the screen")
            await _wait_for(lambda: hook.loaded_at is not None, 120, "the model to load")
            assert hook.ready_at is not None and hook.loaded_at is not None
            marks["screen_s"] = at(hook.ready_at)
            marks["model_ready_s"] = at(hook.loaded_at)
            worker_engine = app.engine_worker.engine
            before = time.perf_counter()
            await app.send_prompt(PROMPT)
            await _wait_for(lambda: bool(hook.finished), 120, "the reply")
            marks["reply_s"] = time.perf_counter() - before
            marks["tokens"] = float(len(hook.finished[-1][1].done.token_ids))
            shown = sum(n for _, n in hook.batches)
            marks["shown_tok_s"] = tokens_per_s(hook.batches[0][0], hook.batches[-1][0], shown)
            del worker_engine
        marks["app_created_s"] = created
        return marks
