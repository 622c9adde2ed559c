"""The final event of a reply, made one way for every engine (local llama.cpp and the servers).

No Textual here. Each engine keeps its reply's bookkeeping in its own object (``_Reply`` in
``llama_engine.py``, ``ReplyState`` in ``backends/common.py``); :func:`reply_done` reads the fields
they share and builds the one ``ReplyDone``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from settings.sampling import SamplingParams
from tui.engine.events import ReplyDone, StopKind, StopReason


class ReplyTally(Protocol):
    """What a reply being generated has counted by its end (the fields ``reply_done`` reads)."""

    @property
    def stop(self) -> StopReason | None: ...
    @property
    def text(self) -> str: ...
    @property
    def tokens(self) -> Sequence[int]: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def prompt_evaluated(self) -> int: ...
    @property
    def prompt_ms(self) -> float: ...
    @property
    def first_token_ms(self) -> float | None: ...
    @property
    def first_token_at(self) -> float | None: ...
    @property
    def ended_at(self) -> float | None: ...
    @property
    def seed(self) -> int: ...
    @property
    def versions(self) -> Mapping[int, SamplingParams]: ...


def reply_done(reply: ReplyTally) -> ReplyDone:
    """The final event: the stop reason (an error when none was set), the text and tokens, the
    prompt's and decoding's timings (decoding from the first token to the end), seed and params."""
    end = reply.ended_at or time.perf_counter()
    stop = reply.stop or StopReason(StopKind.ERROR, message="the reply ended without a reason")
    decode_ms = (end - reply.first_token_at) * 1000.0 if reply.first_token_at else 0.0
    return ReplyDone(
        stop=stop,
        text=reply.text,
        token_ids=tuple(reply.tokens),
        prompt_tokens=reply.prompt_tokens,
        prompt_evaluated=reply.prompt_evaluated,
        prompt_ms=reply.prompt_ms,
        first_token_ms=reply.first_token_ms,
        decode_ms=decode_ms,
        seed=reply.seed,
        params=dict(reply.versions),
    )


__all__ = ["ReplyTally", "reply_done"]
