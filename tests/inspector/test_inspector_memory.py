"""What the inspector's data costs: the TokenEvents (top-N candidates each) of real replies, per 1,000 tokens.

Two independent measures: a deep ``sys.getsizeof`` walk over the events, and tracemalloc around
building the same events afresh (decoded from the chat store's blob, so no object is shared).
Run with ``-s`` to see the figures (quoted in the README's inspector section).
"""

from __future__ import annotations

import sys
import threading
import tracemalloc
from collections.abc import Iterator
from enum import Enum
from pathlib import Path

import pytest

from settings.sampling import SamplingParams
from tui.engine.events import ChatMessage, TokenEvent
from tui.engine.live import LiveParams
from tui.engine.llama_engine import LlamaEngine, load_engine
from tui.engine.protocol import LoadConfig
from tui.store.events_codec import events_to_rows, pack_rows, unpack_events

pytestmark = pytest.mark.real_model
TOP_N = 10
BUDGET_PER_1000 = 4_000_000
"""A generous ceiling: per 1,000 tokens the events must stay well under a few megabytes."""


def deep_size(obj: object, seen: set[int]) -> int:
    """Bytes of ``obj`` and everything it holds, each object counted once (singletons skipped)."""
    if obj is None or isinstance(obj, bool | Enum) or id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, tuple | list):
        size += sum(deep_size(item, seen) for item in obj)
    elif hasattr(obj, "__slots__"):
        size += sum(deep_size(getattr(obj, name), seen) for name in obj.__slots__)
    return size


@pytest.fixture(scope="module")
def events(model_path: Path) -> Iterator[list[TokenEvent]]:
    """About 200 real token events (two sampled replies), top 10 candidates each."""
    engine: LlamaEngine = load_engine(LoadConfig(model_path=model_path, n_ctx=1024, n_threads=1, top_n=TOP_N))
    params = SamplingParams(temperature=1.0, max_new_tokens=120, seed=5)
    collected: list[TokenEvent] = []
    prompts = [
        "Tell me a story about a lighthouse.",
        "Explain how rain forms.",
        "Describe your favourite meal.",
    ]
    try:
        for prompt in prompts:
            stream = engine.stream_reply([ChatMessage("user", prompt)], LiveParams(params), threading.Event())
            collected += [e for e in stream if isinstance(e, TokenEvent)]
    finally:
        engine.close()
    assert len(collected) >= 100
    assert all(len(e.candidates) == TOP_N for e in collected)
    yield collected


def test_bytes_per_1000_tokens(events: list[TokenEvent]) -> None:
    count = len(events)
    as_held = (
        deep_size(events, set()) / count * 1000
    )  # as the app holds them (texts shared via the engine's cache)
    blob = pack_rows(events_to_rows(events))  # the chat store's format: decoding makes every object anew
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fresh = list(unpack_events(blob))
        traced = (tracemalloc.get_traced_memory()[0] - before) / count * 1000
    finally:
        tracemalloc.stop()
    unshared = deep_size(fresh, set()) / count * 1000
    print(
        f"\n{count} real tokens, top {TOP_N} candidates each; per 1,000 tokens: "
        f"{as_held / 1e6:.2f} MB as generated (shared token texts), "
        f"{unshared / 1e6:.2f} MB unshared (getsizeof), {traced / 1e6:.2f} MB (tracemalloc); "
        f"{len(blob) / count * 1000 / 1e3:.0f} kB in the chat store (zlib)"
    )
    assert as_held <= unshared < BUDGET_PER_1000
    assert traced == pytest.approx(unshared, rel=0.25)  # two independent measures agree
    assert fresh == events  # the same events
