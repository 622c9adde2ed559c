"""Fixtures for the chat store tests: a store on disk and builders for engine results."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from settings.sampling import SamplingParams
from tui.engine.events import Candidate, CutBy, ReplyDone, StopKind, StopReason, TokenEvent
from tui.store import ChatStore


def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run the ``async def`` (Pilot) tests in a fresh event loop, like tests/tui does."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


EOS = StopReason(StopKind.EOS, token_id=2, token_text="<|im_end|>", generated=3)


def build_events(texts: list[str], *, top_n: int = 4, versions: list[int] | None = None) -> list[TokenEvent]:
    """Token events with candidates, as the engine would send them for ``texts``."""
    events = []
    for i, text in enumerate(texts):
        candidates = tuple(
            Candidate(
                token_id=100 + i * 10 + k,
                text=text if k == 0 else f"alt{k}\n",
                logit=12.5 - k * 1.25,
                p_raw=0.6 / (k + 1),
                p_final=0.7 / (k + 1) if k < 2 else 0.0,
                cut_by=None if k < 2 else CutBy.TOP_K,
            )
            for k in range(top_n)
        )
        events.append(
            TokenEvent(
                index=i,
                token_id=100 + i * 10,
                text=text,
                piece=text or "\ufffd",
                p_raw=0.6,
                p_final=0.7,
                candidates=candidates,
                entropy=1.5 + i / 7,
                params_version=versions[i] if versions else 0,
                elapsed_ms=20.0 + i / 3,
            )
        )
    return events


def build_done(
    text: str,
    *,
    stop: StopReason = EOS,
    params: dict[int, SamplingParams] | None = None,
    n_tokens: int = 3,
    seed: int = 1234,
) -> ReplyDone:
    """A ReplyDone as the engine would send it at the end of a reply."""
    return ReplyDone(
        stop=stop,
        text=text,
        token_ids=tuple(range(100, 100 + n_tokens)),
        prompt_tokens=27,
        prompt_evaluated=20,
        prompt_ms=41.5,
        first_token_ms=55.25,
        decode_ms=123.0,
        seed=seed,
        params=params if params is not None else {0: SamplingParams(temperature=0.7, seed=seed)},
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test database lives (inside a not yet existing data dir)."""
    return tmp_path / "data" / "chats.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[ChatStore]:
    """A fresh store on disk."""
    with ChatStore(db_path) as chat_store:
        yield chat_store


@pytest.fixture
def make_done() -> Callable[..., ReplyDone]:
    """Builder for ReplyDone events."""
    return build_done


@pytest.fixture
def make_events() -> Callable[..., list[TokenEvent]]:
    """Builder for TokenEvent lists."""
    return build_events
