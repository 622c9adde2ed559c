"""Compare: one prompt, several parameter sets, decoded together in one llama.cpp batch.

The batch runs on its own llama.cpp context, created for the run on the engine's loaded model
with ``n_seq_max`` = columns and a unified KV cache: the prompt is evaluated once (sequence 0)
and its cells are shared with every other sequence (``llama_memory_seq_cp``, no copy). Each step
decodes the next token of every running column in one ``llama_decode``, one sequence per column,
with logits for each. Every column is an ordinary reply of the single-reply engine (its live
parameters read before every token, its own sampler chain and seed, its own stop rules and
events); only where the logits come from differs. A column that stops leaves the batch and its
cells are freed; ``cancel`` stops all columns, a column's own event stops it alone.

Context budget: the compare's KV cache holds at most the engine's ``n_ctx`` tokens in all, the
shared prompt once plus every column's reply: prompt + sum of the columns' max new tokens must fit
(checked before anything starts, with what would fit). Allocated: that sum rounded up to 256.
"""

from __future__ import annotations

import codecs
import dataclasses
import random
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from settings.sampling import SEED_MAX, SamplingParams
from tui.engine.chat_format import ChatTemplateError
from tui.engine.events import (
    ChatMessage,
    EngineError,
    PromptProgress,
    ReplyDone,
    StopKind,
    StopReason,
    TokenEvent,
)
from tui.engine.live import LiveParams
from tui.engine.llama_engine import LlamaEngine, _Reply
from tui.engine.model import round_ctx
from tui.engine.parting import Parting, where_they_part

MAX_COLUMNS = 8
"""More sequences than this in one compare are refused (the view shows at most 4)."""


class CompareDoesNotFit(EngineError):
    """The columns (or the prompt) need more context than the compare may use."""


@dataclass(frozen=True, slots=True)
class CompareStarted:
    """The shared prompt is evaluated; the columns start."""

    columns: int
    prompt_tokens: int
    prompt_evaluated: int
    """Prompt tokens evaluated (once, for all columns)."""
    prompt_ms: float
    kv_cells: int
    """Size of the compare's KV cache in tokens (shared prompt + every column's reply)."""


@dataclass(frozen=True, slots=True)
class ColumnToken:
    """A token of one column."""

    column: int
    token: TokenEvent


@dataclass(frozen=True, slots=True)
class ColumnDone:
    """One column ended (the others may go on)."""

    column: int
    done: ReplyDone


@dataclass(frozen=True, slots=True)
class CompareDone:
    """The last event: every column's ReplyDone, where they parted, and the batch's numbers."""

    dones: tuple[ReplyDone, ...]
    parting: Parting | None
    prompt_tokens: int
    prompt_evaluated: int
    steps: int
    """llama_decode calls after the prompt (one per step, whatever the number of columns)."""
    decoded: int
    """Tokens evaluated in those steps (sum over the steps of the columns still running)."""
    wall_ms: float
    refused: str | None = None
    """Why nothing started (the columns don't fit the context, with what would); None when it ran."""


CompareEvent = PromptProgress | CompareStarted | ColumnToken | ColumnDone | CompareDone
"""Everything :meth:`BatchDecoder.stream_compare` yields; the last one is always a CompareDone."""


def kv_needed(prompt_tokens: int, params: Sequence[SamplingParams]) -> int:
    """Tokens of KV cache the compare needs: the prompt once plus each column's max new tokens."""
    return prompt_tokens + sum(p.max_new_tokens for p in params)


def fit_problem(prompt_tokens: int, params: Sequence[SamplingParams], n_ctx: int) -> str | None:
    """Why these columns can't run in ``n_ctx`` tokens of context, with what would fit; None if they can."""
    count = len(params)
    if count > MAX_COLUMNS:
        return f"{count} columns asked for; a compare runs at most {MAX_COLUMNS}."
    if prompt_tokens + count > n_ctx:
        return (
            f"The prompt is {prompt_tokens} tokens and the context holds {n_ctx} (n_ctx): "
            f"no room for {count} replies. Shorten the prompt or raise n_ctx."
        )
    need = kv_needed(prompt_tokens, params)
    if need <= n_ctx:
        return None
    fits = 0
    while fits < count and kv_needed(prompt_tokens, params[: fits + 1]) <= n_ctx:
        fits += 1
    each = (n_ctx - prompt_tokens) // count
    caps = " + ".join(str(p.max_new_tokens) for p in params)
    return (
        f"{count} columns need {need} tokens of context (prompt {prompt_tokens} + max new tokens {caps}) "
        f"but the context holds {n_ctx} (n_ctx). As set, {fits} column{'s' if fits != 1 else ''} fit"
        f"{'s' if fits == 1 else ''}; all {count} fit with max new tokens <= {each} each. "
        "Lower max new tokens, drop a column or raise n_ctx."
    )


class BatchDecoder:
    """Runs compares on a LlamaEngine's model (the same thread that owns the engine)."""

    def __init__(self, engine: LlamaEngine, *, prompt_batch: int | None = None) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self.engine = engine
        self._llm: Any = engine._llm
        self.prompt_batch = max(1, prompt_batch or int(self._llm.n_batch))
        """Prompt tokens per llama_decode (cancel is checked between them)."""
        self.kv_cells = 0
        """KV cache size of the last compare's context."""
        self.llama_evaluated = 0
        """Tokens llama.cpp itself counted as evaluated in the last compare (its perf counters)."""

    def check(
        self, messages: Sequence[ChatMessage], params: Sequence[SamplingParams], *, raw: bool = False
    ) -> int:
        """The prompt's token count; raises CompareDoesNotFit (or EngineError) before anything runs."""
        prompt = self.prompt(messages, raw=raw)
        problem = fit_problem(len(prompt), params, self.engine.n_ctx)
        if problem:
            raise CompareDoesNotFit(problem)
        return len(prompt)

    def prompt(self, messages: Sequence[ChatMessage], *, raw: bool = False) -> list[int]:
        """The shared prompt's tokens: the chat template applied, or (``raw``, completion mode) the
        messages' texts joined and continued as they are (BOS as the model wants, no template)."""
        if not raw:
            try:
                return self.engine.format_prompt(messages)
            except ChatTemplateError as exc:
                raise EngineError(str(exc)) from None
        text = "".join(message.content for message in messages if message.role != "system")
        tokens: list[int] = self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        if not tokens:
            raise EngineError("There is no text to continue.", "Write the start of a text first.")
        return tokens

    def stream_compare(
        self,
        messages: Sequence[ChatMessage],
        lives: Sequence[LiveParams],
        cancel: threading.Event,
        column_stops: Sequence[threading.Event] | None = None,
        *,
        raw: bool = False,
    ) -> Iterator[CompareEvent]:
        """Generate one reply per LiveParams to ``messages``, all in one batch (``raw``: completion
        mode, the texts continued without the chat template).

        Yields PromptProgress, CompareStarted, ColumnToken/ColumnDone as they come and always a
        final CompareDone (errors become ERROR stop reasons, never exceptions; columns that don't
        fit start nothing and the CompareDone says why in ``refused``). ``column_stops[i]`` stops
        column i alone; ``cancel`` stops all.
        """
        stops = list(column_stops) if column_stops is not None else [threading.Event() for _ in lives]
        if len(stops) != len(lives):
            raise ValueError("one stop event per column")
        run = _Compare(self, lives, cancel, stops)
        refused = None
        try:
            yield from run.run(messages, raw)
        except CompareDoesNotFit as exc:  # before anything started: no column events
            refused = exc.message
            for reply in run.columns:
                reply.stop = StopReason(StopKind.ERROR, message=refused)
        except Exception as exc:  # the promise: errors become stop reasons
            message = exc.message if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
            for column in run.running():
                run.columns[column].stop = StopReason(
                    StopKind.ERROR, message=message, generated=len(run.columns[column].tokens)
                )
            yield from run.finish_all()
        finally:
            run.close()
        done = run.done()
        yield dataclasses.replace(done, refused=refused) if refused else done


class _Compare:
    """The state of one compare run."""

    def __init__(
        self,
        decoder: BatchDecoder,
        lives: Sequence[LiveParams],
        cancel: threading.Event,
        stops: list[threading.Event],
    ) -> None:
        self.decoder = decoder
        self.lib = decoder._lib
        self.engine = decoder.engine
        self.cancel = cancel
        self.columns = [_Reply(self.engine, live, stop, []) for live, stop in zip(lives, stops, strict=True)]
        self.decoders = [codecs.getincrementaldecoder("utf-8")(errors="replace") for _ in lives]
        self.finished: list[bool] = [False] * len(lives)
        self.events: list[list[TokenEvent]] = [[] for _ in lives]
        self.evaluated = [0] * len(lives)
        """Reply tokens of each column evaluated in the batch (its KV cells beyond the prompt)."""
        self.ctx: Any = None
        self.batch: Any = None
        self.prompt_tokens = 0
        self.prompt_evaluated = 0
        self.steps = 0
        self.decoded = 0
        self.started = time.perf_counter()
        self.used = 0
        """KV cells in use: the shared prompt plus the tokens of columns still in the batch."""

    def running(self) -> list[int]:
        """Columns still in the batch."""
        return [c for c, done in enumerate(self.finished) if not done]

    def run(self, messages: Sequence[ChatMessage], raw: bool = False) -> Iterator[CompareEvent]:
        engine = self.engine
        params = []
        for reply in self.columns:
            reply.open_chain()
            version, current = reply.live.snapshot()
            reply.versions[version] = current
            reply.seed = current.seed if current.seed >= 0 else random.SystemRandom().randint(0, SEED_MAX)
            params.append(current)
        prompt = self.decoder.prompt(messages, raw=raw)
        self.prompt_tokens = len(prompt)
        for reply in self.columns:
            reply.prompt_tokens = len(prompt)
        problem = fit_problem(len(prompt), params, engine.n_ctx)
        if problem:
            raise CompareDoesNotFit(problem)

        self.ctx = self._new_context(round_ctx(kv_needed(len(prompt), params)), len(self.columns))
        t0 = time.perf_counter()
        logits = yield from self._eval_prompt(prompt)
        prompt_ms = (time.perf_counter() - t0) * 1000.0
        if logits is None:  # cancelled during the prompt
            for reply in self.columns:
                reply.prompt_ms = prompt_ms
            yield from self.finish_all()
            return
        memory = self.lib.llama_get_memory(self.ctx.ctx)
        for column in range(1, len(self.columns)):
            self.lib.llama_memory_seq_cp(memory, 0, column, -1, -1)
        self.used = len(prompt)
        for reply in self.columns:
            reply.prompt_evaluated = self.prompt_evaluated
            reply.prompt_ms = prompt_ms
        yield CompareStarted(
            len(self.columns), len(prompt), self.prompt_evaluated, prompt_ms, self.decoder.kv_cells
        )
        yield from self._loop(len(prompt), {c: logits for c in range(len(self.columns))})

    def _eval_prompt(self, prompt: list[int]) -> Generator[CompareEvent, None, np.ndarray | None]:
        """Evaluate the prompt on sequence 0 (the last token alone, as the single-reply engine does,
        so the first token's logits match a reply alone); returns its logits, None when cancelled."""
        size = self.decoder.prompt_batch
        head = prompt[:-1]
        chunks = [head[i : i + size] for i in range(0, len(head), size)] + [prompt[-1:]]
        done = 0
        for chunk in chunks:
            if self.cancel.is_set():
                for reply in self.columns:
                    reply._end(StopKind.CANCELLED)
                return None
            array = (self.lib.llama_token * len(chunk))(*chunk)
            status = self.lib.llama_decode(self.ctx.ctx, self.lib.llama_batch_get_one(array, len(chunk)))
            if status != 0:
                raise EngineError(
                    f"llama.cpp could not evaluate the prompt (llama_decode returned {status})."
                )
            done += len(chunk)
            self.prompt_evaluated = done
            yield PromptProgress(evaluated=done, total=len(prompt))
        return self._logits(-1)

    def _loop(self, n_prompt: int, logits: dict[int, np.ndarray]) -> Iterator[CompareEvent]:
        lib = self.lib
        capacity = self.decoder.kv_cells
        token_start = time.perf_counter()
        while True:
            if self.cancel.is_set():
                for column in self.running():
                    self.columns[column].cancel.set()
            for column in self.running():
                reply = self.columns[column]
                current = reply.begin_step()
                event = None
                if current is not None:
                    event = reply.take_token(*current, logits[column], self.decoders[column], token_start)
                if current is None or event is None:
                    yield from self._finish(column)
                    continue
                self.events[column].append(event)
                yield ColumnToken(column, event)
                if reply.ended_after_token(current[1]):
                    yield from self._finish(column)
            running = self.running()
            if not running:
                return
            while self.used + len(running) > capacity:  # live caps raised past the budget
                column = running.pop()
                reply = self.columns[column]
                reply._end(StopKind.CONTEXT_FULL, limit=capacity)
                yield from self._finish(column)
            if not running:
                return
            batch = self.batch
            for i, column in enumerate(running):
                reply = self.columns[column]
                batch.token[i] = reply.tokens[-1]
                batch.pos[i] = n_prompt + len(reply.tokens) - 1
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = column
                batch.logits[i] = 1
            batch.n_tokens = len(running)
            token_start = time.perf_counter()
            status = lib.llama_decode(self.ctx.ctx, batch)
            if status != 0:
                raise EngineError(
                    f"llama.cpp could not evaluate the next tokens (llama_decode returned {status})."
                )
            self.steps += 1
            self.decoded += len(running)
            self.used += len(running)
            for i, column in enumerate(running):
                self.evaluated[column] += 1
                logits[column] = self._logits(i)

    def _finish(self, column: int) -> Iterator[CompareEvent]:
        """Column ``column`` left the batch: free its cells (not the shared prompt's) and report it."""
        self.finished[column] = True
        reply = self.columns[column]
        if self.ctx is not None:
            memory = self.lib.llama_get_memory(self.ctx.ctx)
            self.lib.llama_memory_seq_rm(memory, column, -1, -1)
            self.used -= self.evaluated[column]
        yield ColumnDone(column, reply.done())

    def finish_all(self) -> Iterator[CompareEvent]:
        """Report every column still in the batch as ended (their stop reasons set by the caller)."""
        for column in self.running():
            yield from self._finish(column)

    def done(self) -> CompareDone:
        """The final event."""
        dones = tuple(reply.done() for reply in self.columns)
        parting = where_they_part(self.events, [d.stop for d in dones])
        return CompareDone(
            dones=dones,
            parting=parting,
            prompt_tokens=self.prompt_tokens,
            prompt_evaluated=self.prompt_evaluated,
            steps=self.steps,
            decoded=self.decoded,
            wall_ms=(time.perf_counter() - self.started) * 1000.0,
        )

    def _logits(self, index: int) -> np.ndarray:
        pointer = self.lib.llama_get_logits_ith(self.ctx.ctx, index)
        return np.ctypeslib.as_array(pointer, shape=(self.engine._n_vocab,))

    def _new_context(self, n_cells: int, n_seq: int) -> Any:
        """A context on the engine's model: same threads, flash attention and KV types as the chat's."""
        from llama_cpp._internals import LlamaContext

        llm = self.decoder._llm
        source = llm.context_params
        params = type(source).from_buffer_copy(source)
        params.n_ctx = n_cells
        params.n_seq_max = n_seq
        params.kv_unified = True
        params.n_batch = max(self.decoder.prompt_batch, n_seq)
        params.n_ubatch = min(int(source.n_ubatch), params.n_batch)
        try:
            ctx = LlamaContext(model=llm._model, params=params, verbose=False)
        except ValueError:
            raise EngineError(
                f"llama.cpp could not create a context of {n_cells} tokens for {n_seq} columns.",
                "Lower max new tokens or use fewer columns.",
            ) from None
        self.decoder.kv_cells = int(self.lib.llama_n_ctx(ctx.ctx))
        self.batch = self.lib.llama_batch_init(max(n_seq, 1), 0, 1)
        return ctx

    def close(self) -> None:
        """Free the columns' sampler chains, the batch and the compare's context."""
        for reply in self.columns:
            reply.close_chain()
        if self.batch is not None:
            self.lib.llama_batch_free(self.batch)
            self.batch = None
        if self.ctx is not None:
            self.lib.llama_synchronize(self.ctx.ctx)  # the counters are updated on synchronizing
            perf = self.lib.llama_perf_context(self.ctx.ctx)
            self.decoder.llama_evaluated = int(perf.n_p_eval) + int(perf.n_eval)
            self.ctx.close()
            self.ctx = None
