"""Helpers for the engine tests: run a reply to completion on a real engine."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from settings.sampling import SamplingMode, SamplingParams
from tui.engine.events import ChatMessage, EngineEvent, ReplyDone, TokenEvent
from tui.engine.live import LiveParams
from tui.engine.llama_engine import LlamaEngine

GREEDY = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0, max_new_tokens=64)


def run_reply(
    engine: LlamaEngine,
    messages: Sequence[ChatMessage],
    params: SamplingParams | LiveParams = GREEDY,
    *,
    continue_from: Sequence[int] = (),
    cancel: threading.Event | None = None,
) -> tuple[list[EngineEvent], list[TokenEvent], ReplyDone]:
    """Run a reply to the end: (all events, the token events, the final ReplyDone)."""
    live = params if isinstance(params, LiveParams) else LiveParams(params)
    events = list(
        engine.stream_reply(messages, live, cancel or threading.Event(), continue_from=continue_from)
    )
    done = events[-1]
    assert isinstance(done, ReplyDone)
    assert sum(isinstance(e, ReplyDone) for e in events) == 1
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    return events, tokens, done


def user(text: str) -> list[ChatMessage]:
    """A one-message conversation."""
    return [ChatMessage("user", text)]
