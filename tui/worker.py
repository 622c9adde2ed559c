"""The engine thread: one thread worker owns the model (load + every reply) and posts batched messages.

The UI never calls the engine. It submits a :class:`ReplyJob`; the thread streams the reply and
posts :class:`TokensStreamed` at most every ``batch_s`` seconds (plus the first token at once),
then exactly one :class:`ReplyFinished`. ``post_message`` is thread-safe and does not wait for
the UI, so generation never waits on rendering.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from textual.app import App
from textual.message import Message
from textual.worker import Worker, get_current_worker

from settings.sampling import SamplingParams
from tui.core.state import ModelState
from tui.engine.events import (
    ChatMessage,
    EngineError,
    ModelInfo,
    PromptProgress,
    PromptTrimmed,
    ReplyDone,
    StopKind,
    StopReason,
    TokenEvent,
)
from tui.engine.live import LiveParams
from tui.engine.protocol import ChatEngine, LoadConfig

if TYPE_CHECKING:
    from tui.engine.batch import CompareEvent

EngineFactory = Callable[[LoadConfig], ChatEngine]
"""Loads a model: the real ``load_engine`` or a test fake's factory."""

BATCH_SECONDS = 0.03


class CompareRunner(Protocol):
    """Runs a compare on the loaded engine (BatchDecoder.stream_compare, or a test fake with its rules)."""

    def __call__(
        self,
        messages: Sequence[ChatMessage],
        lives: Sequence[LiveParams],
        cancel: threading.Event,
        stops: Sequence[threading.Event],
        /,
        *,
        raw: bool = False,
    ) -> Iterator[CompareEvent]:
        """Every column's events, the last a CompareDone (``raw``: completion mode, no template)."""
        ...


CompareRunnerFactory = Callable[[ChatEngine], CompareRunner]
"""Makes the compare runner for an engine; raises EngineError when that engine can't compare."""


def batch_runner(engine: ChatEngine) -> CompareRunner:
    """The real compare runner: a BatchDecoder on the llama.cpp engine (imported lazily)."""
    from tui.engine.batch import BatchDecoder
    from tui.engine.llama_engine import LlamaEngine

    if not isinstance(engine, LlamaEngine):
        raise EngineError(
            "compare runs on the local llama.cpp engine only",
            "Load a GGUF model (F2) to compare parameter sets.",
        )
    return BatchDecoder(engine).stream_compare


class ModelLoaded(Message):
    """The model is loaded and ready."""

    def __init__(self, info: ModelInfo) -> None:
        super().__init__()
        self.info = info


class ModelLoadFailed(Message):
    """The model could not be loaded; ``message`` says why and ``hint`` what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__()
        self.message = message
        self.hint = hint


class TokensStreamed(Message):
    """A batch of engine events for the reply ``reply_id`` (tokens, prompt progress, trimming)."""

    def __init__(
        self,
        reply_id: int,
        tokens: tuple[TokenEvent, ...],
        progress: PromptProgress | None,
        trimmed: PromptTrimmed | None,
    ) -> None:
        super().__init__()
        self.reply_id = reply_id
        self.tokens = tokens
        self.progress = progress
        self.trimmed = trimmed


class ReplyFinished(Message):
    """A reply ended (for any reason). Observers (autosave, inspector) can rely on this one message.

    ``messages`` is the conversation the reply answered; ``params`` the live parameters when it
    ended (every version used is in ``done.params``); ``tokens`` every TokenEvent of the reply.
    """

    def __init__(
        self,
        reply_id: int,
        done: ReplyDone,
        messages: tuple[ChatMessage, ...],
        params: SamplingParams,
        tokens: tuple[TokenEvent, ...],
    ) -> None:
        super().__init__()
        self.reply_id = reply_id
        self.done = done
        self.messages = messages
        self.params = params
        self.tokens = tokens


@dataclass
class ReplyJob:
    """One reply to generate."""

    reply_id: int
    messages: tuple[ChatMessage, ...]
    cancel: threading.Event = field(default_factory=threading.Event)
    continue_from: tuple[int, ...] = ()
    raw: bool = False
    """Text completion: continue the messages' joined text, no chat template (see ChatEngine)."""


@dataclass
class CompareJob:
    """One compare: every column decoded in one batch on the worker's engine.

    ``sink`` gets the events in batches (at most every ``handover_s``, and at once for the start,
    a column's end and the end); it is called on the worker thread, so it must only post messages.
    The last batch always ends with a CompareDone.
    """

    messages: tuple[ChatMessage, ...]
    lives: tuple[LiveParams, ...]
    stops: tuple[threading.Event, ...]
    sink: Callable[[list[CompareEvent]], None]
    cancel: threading.Event = field(default_factory=threading.Event)
    handover_s: float = BATCH_SECONDS
    raw: bool = False
    """Completion mode: the prompt is the texts continued as they are (no chat template)."""


_STOP = object()


class EngineWorker:
    """Owns the engine in a single Textual thread worker: loads it, then runs queued replies in order."""

    def __init__(
        self,
        app: App[Any],
        factory: EngineFactory,
        config: LoadConfig,
        live: LiveParams,
        *,
        batch_s: float = BATCH_SECONDS,
        compare_runner: CompareRunnerFactory = batch_runner,
    ) -> None:
        self._app = app
        self.compare_runner = compare_runner
        """Makes the compare runner for the loaded engine (tests put a fake batch here)."""
        self._factory = factory
        self._config = config
        self._live = live
        self.batch_s = batch_s
        """Seconds between TokensStreamed messages while a reply streams (after the first token); the
        app may change it (a float: the worker thread reads it before every token)."""
        self._jobs: queue.Queue[ReplyJob | CompareJob | object] = queue.Queue()
        self._current: ReplyJob | CompareJob | None = None
        self._worker: Worker[None] | None = None
        self.engine: ChatEngine | None = None
        """The loaded engine (read-only for others; only the worker thread calls it)."""

    def start(self) -> None:
        """Start the thread: load the model, then serve jobs."""
        self._worker = self._app.run_worker(
            self._run, name="engine", group="engine", thread=True, exit_on_error=False
        )

    def submit(self, job: ReplyJob | CompareJob) -> None:
        """Queue a reply or a compare; it starts once the model is loaded and earlier jobs are done."""
        self._jobs.put(job)

    def cancel(self, reply_id: int | None = None) -> None:
        """Cancel the reply in progress (only if it is ``reply_id`` when given)."""
        current = self._current
        if isinstance(current, CompareJob):
            if reply_id is None:
                current.cancel.set()
        elif current is not None and (reply_id is None or current.reply_id == reply_id):
            current.cancel.set()

    def shutdown(self) -> None:
        """Cancel the reply in progress and let the thread close the engine and end."""
        self.cancel()
        self._jobs.put(_STOP)

    def replaced(self, config: LoadConfig) -> EngineWorker:
        """A new, not yet started worker for ``config`` (same app, factory, live params, batching)."""
        return EngineWorker(
            self._app, self._factory, config, self._live, batch_s=self.batch_s,
            compare_runner=self.compare_runner,
        )  # fmt: skip

    def _run(self) -> None:
        worker = get_current_worker()
        try:
            engine = self._factory(self._config)
        except EngineError as exc:
            self._app.post_message(ModelLoadFailed(exc.message, exc.hint))
            return
        except Exception as exc:  # any other failure: still a message, never a traceback
            self._app.post_message(ModelLoadFailed(f"{type(exc).__name__}: {exc}", ""))
            return
        self.engine = engine
        self._app.post_message(ModelLoaded(engine.info))
        try:
            while not worker.is_cancelled:
                try:
                    job = self._jobs.get(timeout=0.1)
                except queue.Empty:
                    continue
                if job is _STOP or not isinstance(job, ReplyJob | CompareJob):
                    break
                self._current = job
                try:
                    if isinstance(job, CompareJob):
                        self._serve_compare(engine, job)
                    else:
                        self._serve(engine, job)
                finally:
                    self._current = None
        finally:
            engine.close()

    def _serve(self, engine: ChatEngine, job: ReplyJob) -> None:
        tokens: list[TokenEvent] = []
        pending: list[TokenEvent] = []
        progress: PromptProgress | None = None
        trimmed: PromptTrimmed | None = None
        last_post = float("-inf")  # the first event (prompt progress) goes out at once
        done: ReplyDone | None = None

        def flush() -> None:
            nonlocal progress, trimmed, last_post
            if pending or progress is not None or trimmed is not None:
                self._app.post_message(TokensStreamed(job.reply_id, tuple(pending), progress, trimmed))
                pending.clear()
                progress = trimmed = None
                last_post = time.monotonic()

        try:
            # raw is passed only for text completion, so engines written before it still serve chats
            options = {"raw": True} if job.raw else {}
            for event in engine.stream_reply(
                job.messages, self._live, job.cancel, continue_from=job.continue_from, **options
            ):
                if isinstance(event, TokenEvent):
                    tokens.append(event)
                    pending.append(event)
                elif isinstance(event, PromptProgress):
                    progress = event
                elif isinstance(event, PromptTrimmed):
                    trimmed = event
                elif isinstance(event, ReplyDone):
                    done = event
                    break
                first_token = len(tokens) == 1 and bool(pending)
                if first_token or time.monotonic() - last_post >= self.batch_s:
                    flush()  # the first token at once (time to first token), then every batch_s
        except Exception as exc:  # the engine promises not to raise; if it does, end the reply cleanly
            done = error_done(f"{type(exc).__name__}: {exc}", tokens)
        if done is None:
            done = error_done("the engine ended the reply without a final event", tokens)
        flush()
        self._app.post_message(
            ReplyFinished(job.reply_id, done, job.messages, self._live.params, tuple(tokens))
        )

    def _serve_compare(self, engine: ChatEngine, job: CompareJob) -> None:
        from tui.engine.batch import ColumnToken, CompareDone

        batch: list[CompareEvent] = []
        last = time.monotonic()
        ended = False
        try:
            runner = self.compare_runner(engine)
            for event in runner(job.messages, job.lives, job.cancel, job.stops, raw=job.raw):
                batch.append(event)
                ended = isinstance(event, CompareDone)
                now = time.monotonic()
                if not isinstance(event, ColumnToken) or now - last >= job.handover_s:
                    job.sink(batch)
                    batch = []
                    last = now
        except Exception as exc:  # the runner promises not to raise; if it does, end the compare cleanly
            message = exc.message if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
            batch.append(compare_error(message, len(job.lives)))
            ended = True
        if not ended:
            batch.append(compare_error("the compare ended without a final event", len(job.lives)))
        if batch:
            job.sink(batch)


class ModelSlot:
    """The model the app runs: its load config, the engine worker that owns it, and its state.

    A new model gets a new worker (:meth:`replace`); the parts hold the slot, never the worker.
    """

    def __init__(self, worker: EngineWorker, config: LoadConfig) -> None:
        self.worker = worker
        self.config = config
        self.state = ModelState.LOADING

    @property
    def engine(self) -> ChatEngine | None:
        """The loaded engine (read-only for the UI: only the worker thread calls it)."""
        return self.worker.engine

    def replace(self, config: LoadConfig) -> EngineWorker:
        """Shut the old worker down and hold a new, not yet started one for ``config``."""
        self.worker.shutdown()  # the old thread closes its engine and ends
        self.config = config
        self.worker = self.worker.replaced(config)
        self.state = ModelState.LOADING
        return self.worker


def error_done(message: str, tokens: Sequence[TokenEvent] = ()) -> ReplyDone:
    """A ReplyDone of kind ERROR for a reply that could not end normally."""
    return ReplyDone(
        stop=StopReason(StopKind.ERROR, message=message, generated=len(tokens)),
        text="".join(t.text for t in tokens),
        token_ids=tuple(t.token_id for t in tokens),
        prompt_tokens=0,
        prompt_evaluated=0,
        prompt_ms=0.0,
        first_token_ms=None,
        decode_ms=0.0,
        seed=-1,
    )


def compare_error(message: str, columns: int) -> CompareEvent:
    """The CompareDone of a compare that could not run: every column stopped with ``message``."""
    from tui.engine.batch import CompareDone

    return CompareDone(
        dones=tuple(error_done(message) for _ in range(columns)),
        parting=None,
        prompt_tokens=0,
        prompt_evaluated=0,
        steps=0,
        decoded=0,
        wall_ms=0.0,
    )
