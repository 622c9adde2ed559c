"""A fake batch for the compare view: one FakeEngine reply per column, interleaved like the real batch.

It keeps the real BatchDecoder's rules: the prompt is reported once for all columns, then one token
per running column per step; each column reads its own LiveParams before every token and has its
own stop rules (FakeEngine's); a column's stop event stops it alone, ``cancel`` stops all; the fit
check is the real one (tui.engine.batch.fit_problem); the end carries the real where_they_part.
Token ids are the vocabulary index of the token's text, so columns that emit the same text at the
same place agree (as the real model's ids do) and part where their texts differ.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from settings.sampling import SamplingParams
from tests.fakes import FakeEngine, ScriptedToken
from tui.engine.batch import (
    ColumnDone,
    ColumnToken,
    CompareDone,
    CompareEvent,
    CompareStarted,
    fit_problem,
    kv_needed,
)
from tui.engine.events import ChatMessage, PromptProgress, ReplyDone, TokenEvent
from tui.engine.live import LiveParams
from tui.engine.model import round_ctx
from tui.engine.parting import where_they_part
from tui.worker import error_done


def sure(text: str) -> ScriptedToken:
    """A token the model is sure of (the arg-max), so that greedy and sampled columns both take it,
    as the real engine would: the fake's default probabilities sometimes rank an alternative first."""
    return ScriptedToken(text, 0.9, ((text.strip() + "s" or "x", 0.06), (" the", 0.03)))


SHARED = (sure("The"), sure(" sky"), sure(" is"))
GREY = ScriptedToken(" grey", 0.12, ((" blue", 0.55), (" clear", 0.2)))
PURPLE = ScriptedToken(" purple", 0.03, ((" blue", 0.55), (" grey", 0.12)))
SCRIPTS: tuple[tuple[str | ScriptedToken, ...], ...] = (
    (*SHARED, *map(sure, (" blue", ".", " It", " is", " clear", " today", "."))),
    (*SHARED, GREY, *map(sure, (" and", " low", "."))),
    (*SHARED, PURPLE, *map(sure, (",", " oddly", "."))),
    (*SHARED, *map(sure, (" blue", ".", " Yes", "."))),
)
"""What each column 'generates' (column i plays SCRIPTS[i % 4]): they share 3 tokens, then part."""


@dataclass
class FakeBatch:
    """A CompareRunner with the real batch's rules (see the module docstring)."""

    scripts: Sequence[Sequence[str | ScriptedToken]] = SCRIPTS
    n_ctx: int = 2048
    delay_s: float = 0.0
    """Real time per step (cancel interrupts it)."""
    hold_at: int | None = None
    """If set, every column holds before this token index until :meth:`release`."""
    vocab: dict[str, int] = field(default_factory=dict)
    engines: list[FakeEngine] = field(default_factory=list)
    raw_calls: list[bool] = field(default_factory=list)
    """For each run: completion mode (``raw``) or chat."""

    def release(self) -> None:
        """Let held columns go on."""
        for engine in self.engines:
            engine.release()

    def check(self, messages: Sequence[ChatMessage], params: Sequence[SamplingParams]) -> str | None:
        """The real fit check on the fake prompt size."""
        return fit_problem(FakeEngine().prompt_tokens(messages), params, self.n_ctx)

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
        """Run the columns: one FakeEngine reply each, one token per running column per step
        (``raw``: completion mode, the fake's prompt without its template tokens)."""
        self.raw_calls.append(raw)
        self.engines = [
            FakeEngine(script=self.scripts[c % len(self.scripts)], n_ctx=self.n_ctx, hold_at=self.hold_at)
            for c in range(len(lives))
        ]
        prompt = self.engines[0].prompt_tokens(messages, raw=raw)
        params = [live.params for live in lives]
        problem = fit_problem(prompt, params, self.n_ctx)
        if problem:  # as the real batch: nothing starts, the end says why
            yield CompareDone(tuple(error_done(problem) for _ in lives), None, prompt, 0, 0, 0, 0.0, problem)
            return
        yield PromptProgress(prompt, prompt)
        yield CompareStarted(len(lives), prompt, prompt, 40.0, round_ctx(kv_needed(prompt, params)))
        streams = [
            engine.stream_reply(messages, live, stop, raw=raw)
            for engine, live, stop in zip(self.engines, lives, stops, strict=True)
        ]
        for stream in streams:
            next(stream)  # each FakeEngine reports its prompt: the batch evaluated it once, above
        events: list[list[TokenEvent]] = [[] for _ in lives]
        dones: list[ReplyDone | None] = [None] * len(lives)
        while any(done is None for done in dones):
            if cancel.is_set():
                for stop in stops:
                    stop.set()
            for column, stream in enumerate(streams):
                if dones[column] is not None:
                    continue
                event = next(stream)
                if isinstance(event, TokenEvent):
                    token = dataclasses.replace(event, token_id=self._id(event.text))
                    events[column].append(token)
                    yield ColumnToken(column, token)
                elif isinstance(event, ReplyDone):
                    done = dataclasses.replace(event, token_ids=tuple(e.token_id for e in events[column]))
                    dones[column] = done
                    yield ColumnDone(column, done)
            if self.delay_s:
                cancel.wait(self.delay_s)
        finished = tuple(d for d in dones if d is not None)
        yield CompareDone(
            dones=finished,
            parting=where_they_part(events, [d.stop for d in finished]),
            prompt_tokens=prompt,
            prompt_evaluated=prompt,
            steps=max(len(e) for e in events),
            decoded=sum(len(e) for e in events),
            wall_ms=10.0 * max(len(e) for e in events) + 40.0,
        )

    def _id(self, text: str) -> int:
        return self.vocab.setdefault(text, 100 + len(self.vocab))
