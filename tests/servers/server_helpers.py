"""Helpers for the server backend tests: configs, one reply's events."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import Any

from settings.sampling import SamplingMode, SamplingParams
from tui.engine.backends.common import ServerConfig
from tui.engine.events import ChatMessage, EngineEvent, ReplyDone, TokenEvent
from tui.engine.live import LiveParams
from tui.engine.protocol import ChatEngine

SYSTEM = "You are a helpful assistant."
GREEDY = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0, max_new_tokens=24)


def server_config(url: str, **changes: Any) -> ServerConfig:
    """A llama-server ServerConfig for ``url`` (top 5 candidates, the usual system prompt)."""
    return dataclasses.replace(ServerConfig("llama-server", url, top_n=5, system_prompt=SYSTEM), **changes)


def run_reply(
    engine: ChatEngine,
    prompt: str | Sequence[ChatMessage],
    params: SamplingParams = GREEDY,
    *,
    live: LiveParams | None = None,
    cancel: threading.Event | None = None,
) -> tuple[list[EngineEvent], ReplyDone]:
    """All events of one reply and its ReplyDone."""
    messages = [ChatMessage("user", prompt)] if isinstance(prompt, str) else list(prompt)
    events = list(engine.stream_reply(messages, live or LiveParams(params), cancel or threading.Event()))
    done = events[-1]
    assert isinstance(done, ReplyDone)
    assert not any(isinstance(e, ReplyDone) for e in events[:-1])
    return events, done


def tokens_of(events: Sequence[EngineEvent]) -> list[TokenEvent]:
    """The TokenEvents among ``events``."""
    return [e for e in events if isinstance(e, TokenEvent)]
