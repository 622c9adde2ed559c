"""Finished compare columns as records for the store tests: three replies with their parameters and stops."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from settings.sampling import SamplingMode, SamplingParams
from tui.core.autosave import Autosave
from tui.core.conversation import Conversation
from tui.engine.events import Candidate, ReplyDone, StopKind, StopReason, TokenEvent
from tui.engine.live import LiveParams
from tui.store import ChatStore
from tui.store.session import ChatSession

COLUMN_PARAMS = (
    SamplingParams(mode=SamplingMode.GREEDY),
    SamplingParams(temperature=0.8, seed=1),
    SamplingParams(temperature=1.5, seed=2),
)
COLUMN_TEXTS = (("The", " sky", " is", " blue"), ("The", " sky", " looks", " grey"), ("Blue", "!"))


def column_tokens(texts: Sequence[str]) -> tuple[TokenEvent, ...]:
    return tuple(
        TokenEvent(
            index=i,
            token_id=100 + i,
            text=text,
            piece=text,
            p_raw=0.5,
            p_final=0.6,
            candidates=(Candidate(100 + i, text, 1.0, 0.5, 0.6, None),),
            entropy=0.4,
            params_version=0,
            elapsed_ms=1.0,
        )
        for i, text in enumerate(texts)
    )


def column_done(events: Sequence[TokenEvent], params: SamplingParams, stop: StopReason) -> ReplyDone:
    return ReplyDone(
        stop=stop,
        text="".join(e.text for e in events),
        token_ids=tuple(e.token_id for e in events),
        prompt_tokens=12,
        prompt_evaluated=12,
        prompt_ms=1.0,
        first_token_ms=2.0,
        decode_ms=3.0,
        seed=params.seed,
        params={0: params},
    )


def columns() -> list[tuple[ReplyDone, tuple[TokenEvent, ...]]]:
    stops = (
        StopReason(StopKind.EOS, generated=4, token_id=2, token_text="<|im_end|>"),
        StopReason(StopKind.MAX_TOKENS, generated=4, limit=4),
        StopReason(StopKind.EOS, generated=2, token_id=2, token_text="<|im_end|>"),
    )
    result = []
    for texts, params, stop in zip(COLUMN_TEXTS, COLUMN_PARAMS, stops, strict=True):
        events = column_tokens(texts)
        result.append((column_done(events, params, stop), events))
    return result


def saved_conversation(path: Path) -> tuple[Conversation, ChatSession]:
    session = ChatSession(ChatStore(path))
    chat = Conversation(LiveParams(SamplingParams()))
    chat.observe(Autosave(session))
    return chat, session
