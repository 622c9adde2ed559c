"""Section 3: what candidate capture and the live-parameter checks cost per token, in microseconds.

Measured on real logits from the model, calling the engine's own per-token code:
- candidate capture: ``_Reply._event`` (the TokenEvent with top-N candidates, their probabilities
  after the samplers, which sampler cut each one, entropy) at top_n = N minus the same call at
  top_n = 0 (token text only);
- parameter checks: the reads and comparisons the loop does around each token (LiveParams snapshot,
  version bookkeeping, the max-tokens cap, the sampler-chain key compare, cancel and context checks),
  the same statements as the loop in ``tui/engine/llama_engine.py``.
"""

from __future__ import annotations

import codecs
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from settings.sampling import SamplingParams
from tests.bench.common import MODES

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
    """mode -> the TokenEvent without candidates."""
    checks_us: dict[str, float]
    """mode -> parameter checks per token."""


def _param_checks(reply: Any, live: Any, cancel: threading.Event, n_ctx: int) -> Callable[[], object]:
    """The loop's per-token parameter statements (llama_engine._Reply._loop), as one callable."""
    from tui.engine.llama_engine import _ChainKey

    tokens = reply.tokens
    versions = reply.versions
    llm = reply.engine._llm
    state: dict[str, Any] = {"key": None}

    def checks() -> object:
        version, params = live.snapshot()
        if version not in versions:
            versions[version] = params
        if len(tokens) >= params.max_new_tokens:
            return None
        greedy = params.is_greedy
        if not greedy:
            seed = params.seed if params.seed >= 0 else reply.seed
            key = _ChainKey(
                params.temperature,
                params.top_k,
                params.top_p,
                params.min_p,
                params.repeat_penalty,
                params.repeat_last_n,
                seed,
            )
            if key != state["key"]:
                state["key"] = key
        if params.stop:
            pass
        version, params = live.snapshot()
        if len(tokens) >= params.max_new_tokens:
            return None
        if cancel.is_set():
            return None
        return llm.n_tokens >= n_ctx

    return checks


def _measure_mode(
    engine: Any, params: SamplingParams, sizes: tuple[int, ...], iterations: int
) -> tuple[float, dict[int, float], float]:
    """(event without candidates, capture cost by N, parameter checks) for one parameter set, in us."""
    from tests.bench.common import PROMPT, SYSTEM_PROMPT
    from tui.engine.events import ChatMessage, ReplyDone
    from tui.engine.live import LiveParams
    from tui.engine.llama_engine import _Reply

    messages = [ChatMessage("system", SYSTEM_PROMPT), ChatMessage("user", PROMPT)]
    live = LiveParams(params)
    cancel = threading.Event()
    done = [e for e in engine.stream_reply(messages, live, cancel) if isinstance(e, ReplyDone)][-1]
    logits = engine._logits().copy()
    reply = _Reply(engine, live, cancel, list(done.token_ids[:-1]))  # below the max-tokens cap
    reply.seed = done.seed
    token = int(done.token_ids[-1])
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    greedy = params.is_greedy

    def event() -> object:
        return reply._event(token, params, 0, greedy, logits, decoder, time.perf_counter())

    engine.top_n = 0
    base = _time_us(event, iterations)
    capture: dict[int, float] = {}
    for n in sizes:
        engine.top_n = n
        capture[n] = _time_us(event, iterations)
    engine.top_n = 0
    base = min(base, _time_us(event, iterations))
    capture = {n: max(0.0, us - base) for n, us in capture.items()}
    empty = _time_us(lambda: None, iterations * 10)
    checks = _time_us(_param_checks(reply, live, cancel, engine.n_ctx), iterations * 10)
    return base, capture, max(0.0, checks - empty)


def measure_overhead(engine: Any, sizes: tuple[int, ...] = (10, 50), iterations: int = 200) -> Overhead:
    """Run one reply per mode for real logits and history, then time the per-token code on them."""
    capture: dict[str, dict[int, float]] = {}
    base: dict[str, float] = {}
    checks: dict[str, float] = {}
    saved_top_n = engine.top_n
    try:
        for mode, params in MODES.items():
            base[mode], capture[mode], checks[mode] = _measure_mode(engine, params, sizes, iterations)
    finally:
        engine.top_n = saved_top_n
    return Overhead(capture, base, checks)
