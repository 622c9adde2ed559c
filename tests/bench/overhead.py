"""Section 3: what candidate capture and the live-parameter checks cost per token, in microseconds.

- Candidate capture: the engine's real token loop with ``llama_decode`` taken out (the engine's
  ``_decode_one`` replaced by a no-op, so every step reuses the same real logits): per-token time at
  top_n = N minus the same at top_n = 0. What remains at top_n = 0 is everything else the loop does
  per token in Python (sampling call, text decoding, the TokenEvent, the checks).
- Parameter checks: the reads and comparisons the loop does around each token (LiveParams
  snapshot, version bookkeeping, the max-tokens cap, the new-parameters check, cancel and
  context checks), the same statements as the loop in ``tui/engine/llama_engine.py``.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from settings.sampling import SamplingParams
from tests.bench.common import MODES, PROMPT, SYSTEM_PROMPT, tokens_per_s

REPEATS = 7
"""Timed batches per measure; the median batch is reported."""


def _time_us(fn: Callable[[], object], iterations: int) -> float:
    """Median over REPEATS batches of the mean time per call, in microseconds."""
    batches = []
    for _ in range(REPEATS):
        start = time.perf_counter_ns()
        for _ in range(iterations):
            fn()
        batches.append((time.perf_counter_ns() - start) / iterations / 1000.0)
    return statistics.median(batches)


@dataclass(frozen=True)
class Overhead:
    """Per-token costs in microseconds, by mode."""

    capture_us: dict[str, dict[int, float]]
    """mode -> N -> candidate capture cost (event at N minus event at 0)."""
    event_base_us: dict[str, float]
    """mode -> the loop's other per-token work (top_n = 0, no llama_decode)."""
    checks_us: dict[str, float]
    """mode -> parameter checks per token."""


def _param_checks(reply: Any, live: Any, cancel: threading.Event, n_ctx: int) -> Callable[[], object]:
    """The loop's per-token parameter statements (llama_engine._Reply._loop), as one callable."""
    tokens = reply.tokens
    versions = reply.versions
    llm = reply.engine._llm
    state: dict[str, Any] = {"params": None}

    def checks() -> object:
        version, params = live.snapshot()
        if version not in versions:
            versions[version] = params
        if len(tokens) >= params.max_new_tokens:
            return None
        if params is not state["params"]:  # the chain is updated only for new parameters
            state["params"] = params
        if params.stop:
            pass
        version, params = live.snapshot()
        if len(tokens) >= params.max_new_tokens:
            return None
        if cancel.is_set():
            return None
        return llm.n_tokens >= n_ctx

    return checks


def loop_us_per_token(engine: Any, params: SamplingParams, top_n: int, reps: int = REPEATS) -> float:
    """Median per-token time of the engine's loop without llama_decode, in microseconds."""
    from tui.engine.events import ChatMessage, TokenEvent
    from tui.engine.live import LiveParams

    messages = [ChatMessage("system", SYSTEM_PROMPT), ChatMessage("user", PROMPT)]
    engine.top_n = top_n
    samples = []
    for _ in range(reps):
        first = last = 0.0
        count = 0
        for event in engine.stream_reply(messages, LiveParams(params), threading.Event()):
            if isinstance(event, TokenEvent):
                last = time.perf_counter()
                first = first or last
                count += 1
        samples.append(1e6 / tokens_per_s(first, last, count))
    return statistics.median(samples)


def _checks_us(engine: Any, params: SamplingParams, iterations: int) -> float:
    """The per-token parameter statements, timed on a reply state like the loop's."""
    from tui.engine.live import LiveParams
    from tui.engine.llama_engine import _Reply

    live = LiveParams(params)
    cancel = threading.Event()
    reply = _Reply(engine, live, cancel, [0] * (params.max_new_tokens // 2))
    reply.seed = 1
    empty = _time_us(lambda: None, iterations)
    return max(0.0, _time_us(_param_checks(reply, live, cancel, engine.n_ctx), iterations) - empty)


def measure_overhead(engine: Any, sizes: tuple[int, ...] = (10, 50), iterations: int = 2000) -> Overhead:
    """Candidate capture and parameter checks per token, for each mode (see the module docstring)."""
    capture: dict[str, dict[int, float]] = {}
    base: dict[str, float] = {}
    checks: dict[str, float] = {}
    saved_top_n = engine.top_n
    real_decode = engine._decode_one
    engine._decode_one = lambda token: None
    try:
        for mode, params in MODES.items():
            base[mode] = loop_us_per_token(engine, params, 0)
            with_n = {n: loop_us_per_token(engine, params, n) for n in sizes}
            base[mode] = min(base[mode], loop_us_per_token(engine, params, 0))
            capture[mode] = {n: max(0.0, us - base[mode]) for n, us in with_n.items()}
            checks[mode] = _checks_us(engine, params, iterations)
    finally:
        engine._decode_one = real_decode
        engine.top_n = saved_top_n
    return Overhead(capture, base, checks)
