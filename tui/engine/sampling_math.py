"""Sampling maths on logits with numpy: pure functions, no llama.cpp.

The filters follow llama.cpp's sampler chain in the order tokendial builds it:
penalties -> top-k -> top-p -> min-p -> temperature -> draw. So top-k, top-p and min-p all
see temperature-1 probabilities (after penalties), and temperature only reshapes what
survived. The engine uses these functions to say which sampler cut each candidate and with
what probability the survivors were drawn; the inspector reuses them for its what-if.
"""

from __future__ import annotations

import math
import threading
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from tui.engine.events import CutBy

_native: types.ModuleType | None
try:  # compiled at install (see _logitstats.c); numpy does the same work where it could not be built
    import tui.engine._logitstats as _native
except ImportError:  # pragma: no cover - depends on the install
    _native = None

FloatArray = NDArray[np.floating]
LOG2 = math.log(2.0)
TOP_P_TOLERANCE = 1e-6
"""Cumulative probabilities within this of top-p count as reaching it (float rounding)."""


def top_n_indices(logits: FloatArray, n: int, *, peak: float | None = None) -> NDArray[np.intp]:
    """Indices of the ``n`` largest logits, largest first (ties: lower index first); no full sort.

    With ``peak`` (the maximum logit) known, first tries the few tokens within a margin of it
    (a comparison pass instead of a partial sort of the whole vocabulary).
    """
    size = logits.shape[0]
    n = min(n, size)
    if n <= 0:
        return np.empty(0, dtype=np.intp)
    part: NDArray[np.intp] | None = None
    if peak is not None and n * 8 < size:
        # Any margin gives the same exact answer (every token above the n-th largest logit is
        # within it once n tokens are); the margin only decides the cost: each try is a pass over
        # the vocabulary, and the tokens found are partially sorted. Start from the margin that
        # worked for this n last time (logits change little from one step to the next).
        mask = _SCRATCH.array("mask", size, np.dtype(np.bool_))
        hints = _SCRATCH.margin_hint
        first = hints.get(n, _MARGIN_START)
        for index in range(first, len(_MARGINS)):
            near = np.flatnonzero(np.greater_equal(logits, peak - _MARGINS[index], out=mask))
            if near.shape[0] >= n:
                part = near
                hints[n] = _margin_hint(index, near.shape[0], n)
                break
        else:
            hints[n] = _MARGIN_START
    if part is None:
        part = np.arange(size, dtype=np.intp)
    if part.shape[0] > n:
        part = part[np.argpartition(logits[part], part.shape[0] - n)[part.shape[0] - n :]]
    # Sort the few picked by logit, descending; ties by lower token id first.
    order = np.lexsort((part, -logits[part].astype(np.float64)))
    result: NDArray[np.intp] = part[order]
    return result


def _margin_hint(index: int, found: int, n: int) -> int:
    """The margin to try first next time for this n, after _MARGINS[index] held ``found`` >= n tokens:
    a narrower one when it held far more than needed."""
    return max(index - 1, 0) if found > 64 * n else index


_MARGINS = (2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0)
_MARGIN_START = 3
"""Where the margins are first tried from (8) for an n seen for the first time."""


class _Scratch(threading.local):
    """Work arrays reused from one step to the next, one set per thread (a fresh vocabulary-sized
    array each step costs more than the arithmetic on it: the allocator maps and faults in new pages)."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.margin_hint: dict[int, int] = {}
        """top_n_indices: for each n, the index in _MARGINS to try first."""

    def array(self, name: str, size: int, dtype: np.dtype) -> np.ndarray:
        """An uninitialised 1-D array of ``size`` ``dtype`` values; the same one until size or dtype change.
        Its contents are only valid until the next call with that name on this thread."""
        found = self.arrays.get(name)
        if found is None or found.shape[0] != size or found.dtype != dtype:
            found = self.arrays[name] = np.empty(size, dtype=dtype)
        return found


_SCRATCH = _Scratch()


def log_sum_exp(logits: FloatArray) -> float:
    """log(sum(exp(logits))), computed stably in float64."""
    if logits.shape[0] == 0:
        return -math.inf
    peak = float(np.max(logits))
    if not math.isfinite(peak):
        return peak
    total = float(np.sum(np.exp(logits.astype(np.float64) - peak)))
    return peak + math.log(total)


def softmax(logits: FloatArray) -> NDArray[np.float64]:
    """Probabilities from logits (float64, sums to 1)."""
    values = logits.astype(np.float64)
    if values.shape[0] == 0:
        return values
    shifted = np.exp(values - np.max(values))
    result: NDArray[np.float64] = shifted / shifted.sum()
    return result


def logit_stats(logits: FloatArray) -> tuple[float, float]:
    """(log-sum-exp, entropy in bits) of the distribution softmax(logits), in one exp pass."""
    _, lse, entropy, _ = stats_top(logits, 1)
    return lse, entropy


def stats_top(logits: FloatArray, n: int) -> tuple[float, float, float, NDArray[np.intp] | None]:
    """(max, log-sum-exp, entropy in bits) of softmax(logits), and the ``n`` largest logits' ids as
    :func:`top_n_indices` gives them (None when this pass did not find them).

    With the compiled pass (float32 logits, ``n`` a small part of the vocabulary) all of it comes
    from one read of the logits: the top ``n`` are sought among the tokens within a margin of the
    peak (the margin that worked for this ``n`` last time, as in top_n_indices). Otherwise, or when
    fewer than ``n`` were that near, the numpy passes of :func:`_stats` give the statistics and the
    ids are left to top_n_indices. The two agree to float32 rounding (tests).
    """
    size = logits.shape[0]
    if _native is None or logits.dtype != np.float32 or not logits.flags.c_contiguous or not 0 < n * 8 < size:
        return (*_stats(logits), None)
    hints = _SCRATCH.margin_hint
    index = hints.get(n, _MARGIN_START)
    best = _SCRATCH.array("best", n, np.dtype(np.int32))
    peak, total, weighted, count = _native.stats(logits, _MARGINS[index], best)
    if not (math.isfinite(peak) and total > 0.0):  # NaN or infinite logits: numpy's rules
        return (*_stats(logits), None)
    top = None
    if count >= n:
        top = best.astype(np.intp)
        hints[n] = _margin_hint(index, count, n)
    entropy_nats = math.log(total) - weighted / total
    return peak, peak + math.log(total), max(entropy_nats, 0.0) / LOG2, top


def _stats(logits: FloatArray) -> tuple[float, float, float]:
    """(max, log-sum-exp, entropy in bits) of softmax(logits), with numpy."""
    peak = float(np.max(logits))
    if logits.dtype.kind == "f":
        # The same operations as ``np.exp(logits - peak)``, into this thread's reused arrays.
        size, dtype = logits.shape[0], logits.dtype
        shifted = np.subtract(logits, dtype.type(peak), out=_SCRATCH.array("shifted", size, dtype))
        weights = np.exp(shifted, out=_SCRATCH.array("weights", size, dtype))
    else:
        shifted = logits - peak
        weights = np.exp(shifted)
    total = float(np.sum(weights))  # pairwise summation: float32 is accurate enough here
    # H = log Z - E[x - peak] (natural log), Z = sum exp(x - peak). np.multiply + sum, not
    # np.dot: that goes to a multithreaded BLAS, which stalls when other work loads the CPUs
    # (and sums in another order).
    np.multiply(weights, shifted, out=weights)
    mean_shifted = float(np.sum(weights)) / total
    entropy_nats = math.log(total) - mean_shifted
    return peak, peak + math.log(total), max(entropy_nats, 0.0) / LOG2


def entropy_bits(logits: FloatArray) -> float:
    """Entropy of softmax(logits) in bits."""
    return logit_stats(logits)[1]


def penalized_ids(history: Sequence[int], last_n: int) -> NDArray[np.intp]:
    """The distinct token ids the repeat penalty applies to (the last ``last_n`` of history)."""
    if last_n <= 0 or not history:
        return np.empty(0, dtype=np.intp)
    # sorted(set()): what np.unique gives, without its fixed cost on a few dozen ids (once a token)
    return np.array(sorted(set(history[-last_n:])), dtype=np.intp)


def penalize(logits: FloatArray, ids: NDArray[np.intp], repeat_penalty: float) -> FloatArray:
    """Apply the repeat penalty to ``logits[ids]`` like llama.cpp: positive logits are divided
    by the penalty, negative ones multiplied. Returns a new array (the input is not touched)."""
    result = logits.copy()
    if ids.shape[0] == 0 or repeat_penalty == 1.0:
        return result
    values = result[ids]
    penalty = np.asarray(repeat_penalty, dtype=result.dtype)
    result[ids] = np.where(values <= 0, values * penalty, values / penalty)
    return result


_CUT_CODES: tuple[CutBy | None, ...] = (None, CutBy.GREEDY, CutBy.TOP_K, CutBy.TOP_P, CutBy.MIN_P)
_NONE, _GREEDY, _TOP_K, _TOP_P, _MIN_P = range(5)


@dataclass(frozen=True, slots=True)
class FilterResult:
    """What the samplers did to a set of logits (arrays aligned with the input)."""

    p_final: NDArray[np.float64]
    """Probability of being drawn after all samplers and temperature; 0 where cut."""
    cut_code: NDArray[np.int8]
    """Index into ``(None, GREEDY, TOP_K, TOP_P, MIN_P)``: which sampler removed each entry."""
    order: NDArray[np.intp]
    """Input indices from the highest logit to the lowest (ties: lower index first)."""
    kept_after_top_k: int
    kept_after_top_p: int
    kept: int
    """How many survived everything (they are ``order[:kept]``)."""
    complete: bool
    """False when the input was only part of the vocabulary and that was not enough to be exact
    (top-p needed probability mass beyond it, or top-k or the survivors reached past it)."""

    def cut_at(self, index: int) -> CutBy | None:
        """Which sampler removed input entry ``index`` (None = survived)."""
        return _CUT_CODES[int(self.cut_code[index])]

    @property
    def cut_by(self) -> tuple[CutBy | None, ...]:
        """Which sampler removed each input entry (None = survived)."""
        return tuple(_CUT_CODES[int(c)] for c in self.cut_code.tolist())


def apply_samplers(
    logits: FloatArray,
    *,
    top_k: int,
    top_p: float,
    min_p: float,
    temperature: float,
    greedy: bool = False,
    log_normalizer: float | None = None,
) -> FilterResult:
    """Run top-k -> top-p -> min-p -> temperature on ``logits`` (penalties already applied).

    ``logits`` is the whole vocabulary, or a subset holding the most likely tokens; for a
    subset pass ``log_normalizer`` = log-sum-exp over the whole vocabulary at temperature 1,
    so top-p sees true probabilities. ``greedy`` (or temperature <= 0) keeps only the arg-max.
    """
    values = np.asarray(logits, dtype=np.float64)
    size = values.shape[0]
    order = np.lexsort((np.arange(size), -values)).astype(np.intp)
    sorted_values = values[order]
    cut_sorted = np.zeros(size, dtype=np.int8)
    partial = log_normalizer is not None
    complete = True

    if size == 0:
        return FilterResult(np.zeros(0), cut_sorted, order, 0, 0, 0, True)

    if greedy or temperature <= 0.0:
        p_sorted = np.zeros(size)
        p_sorted[0] = 1.0
        cut_sorted[1:] = _GREEDY
        return _result(p_sorted, cut_sorted, order, 1, 1, 1, True)

    # top-k
    n_top_k = size
    if top_k > 0:
        if partial and top_k > size:
            complete = False
        n_top_k = min(top_k, size)
        cut_sorted[n_top_k:] = _TOP_K

    # top-p on temperature-1 probabilities renormalized over the top-k survivors
    n_top_p = n_top_k
    if top_p < 1.0:
        if 0 < top_k <= size or log_normalizer is None:
            normalizer = _lse(sorted_values[:n_top_k])
        else:
            normalizer = log_normalizer
        cumulative = np.cumsum(np.exp(sorted_values[:n_top_k] - normalizer))
        reached = np.flatnonzero(cumulative >= top_p - TOP_P_TOLERANCE)
        if reached.shape[0]:
            n_top_p = int(reached[0]) + 1
        elif partial:
            complete = False
        cut_sorted[n_top_p:n_top_k] = _TOP_P

    # min-p: keep logits >= max + log(min_p) (the first always stays)
    n_kept = n_top_p
    if min_p > 0.0:
        threshold = sorted_values[0] + math.log(min_p)
        below = np.flatnonzero(sorted_values[1:n_top_p] < threshold)
        if below.shape[0]:
            n_kept = int(below[0]) + 1
        cut_sorted[n_kept:n_top_p] = _MIN_P

    # temperature, then the draw's softmax over the survivors
    p_sorted = np.zeros(size)
    p_sorted[:n_kept] = softmax(sorted_values[:n_kept] / temperature)
    if partial and n_kept == size and not 0 < top_k <= size:
        complete = False  # survivors may go on beyond the subset: their mass is unknown
    return _result(p_sorted, cut_sorted, order, n_top_k, n_top_p, n_kept, complete)


def _lse(values: NDArray[np.float64]) -> float:
    peak = float(values.max())
    return peak + math.log(float(np.exp(values - peak).sum()))


def _result(
    p_sorted: NDArray[np.float64],
    cut_sorted: NDArray[np.int8],
    order: NDArray[np.intp],
    n_top_k: int,
    n_top_p: int,
    n_kept: int,
    complete: bool,
) -> FilterResult:
    p_final = np.zeros_like(p_sorted)
    p_final[order] = p_sorted
    cut_code = np.zeros_like(cut_sorted)
    cut_code[order] = cut_sorted
    return FilterResult(p_final, cut_code, order, n_top_k, n_top_p, n_kept, complete)


@dataclass(frozen=True, slots=True)
class StepDistribution:
    """The numbers the engine reports for one generation step."""

    top_ids: list[int]
    """The top-N token ids by raw logit, most likely first."""
    top_logits: list[float]
    top_p_raw: list[float]
    top_p_final: list[float]
    top_cut_by: list[CutBy | None]
    entropy_bits: float
    log_normalizer: float
    """log-sum-exp of the raw logits (so p_raw = exp(logit - log_normalizer))."""
    extra_p_final: dict[int, float]
    """p_final of the ``extra_ids`` asked for (e.g. the token actually drawn)."""
    chain_pool: NDArray[np.intp] | None = None
    """With top-k on: token ids holding every token the samplers can keep (the top ones by raw
    logit plus every penalized one), so a sampler chain fed only these draws exactly as if fed
    the whole vocabulary. None when the chain needs the whole vocabulary."""
    stages: tuple[tuple[str, int], ...] = ()
    """(stage, how many tokens it left) for each stage of the chain that ran (engine only)."""

    def p_raw_of(self, logit: float) -> float:
        """Raw probability of a token with this raw logit."""
        return math.exp(logit - self.log_normalizer)

    def with_outcome(
        self, top_p_final: list[float], top_cut_by: list[CutBy | None], stages: tuple[tuple[str, int], ...]
    ) -> StepDistribution:
        """This step with what the chain did to its candidates (what dataclasses.replace gives,
        without its field-by-field introspection once a token)."""
        return StepDistribution(
            self.top_ids,
            self.top_logits,
            self.top_p_raw,
            top_p_final,
            top_cut_by,
            self.entropy_bits,
            self.log_normalizer,
            self.extra_p_final,
            self.chain_pool,
            stages,
        )


POOL_MIN = 256
"""With top-k off, the samplers are first tried on this many top tokens before the vocabulary."""


class _Ranked(NamedTuple):
    """A step's raw statistics and its top tokens by raw logit (see :func:`_rank`)."""

    log_normalizer: float
    entropy_bits: float
    ranked: NDArray[np.intp] | None
    """The top ``pool_size`` token ids, most likely first (None: not a small part of the vocabulary)."""
    top_ids: list[int]
    top_logits: list[float]
    top_p_raw: list[float]


def _rank(logits: FloatArray, top_n: int, pool_size: int) -> _Ranked:
    """One statistics pass, and one selection of the top ``pool_size`` tokens that serves both the
    top-N candidates and the pool the samplers are first tried on."""
    small_pool = pool_size < logits.shape[0] // 4
    peak, log_norm, entropy, best = stats_top(logits, pool_size if small_pool else top_n)
    if best is None:
        ranked = top_n_indices(logits, pool_size, peak=peak) if small_pool else None
        top_ids_arr = ranked[:top_n] if ranked is not None else top_n_indices(logits, top_n, peak=peak)
    else:
        ranked = best if small_pool else None
        top_ids_arr = best[:top_n]
    top_logits = logits[top_ids_arr].astype(np.float64).tolist()
    top_p_raw = [math.exp(v - log_norm) for v in top_logits]
    return _Ranked(log_norm, entropy, ranked, top_ids_arr.tolist(), top_logits, top_p_raw)


def _with_penalized(pool: NDArray[np.intp], pen_ids: NDArray[np.intp]) -> NDArray[np.intp]:
    """``pool`` followed by the penalized ids it lacks (a repeat penalty can reach past the top ones)."""
    if pen_ids.shape[0] == 0:
        return pool
    have = set(pool.tolist())  # a few dozen ids each: a set beats np.isin's sorts here
    missing = [t for t in pen_ids.tolist() if t not in have]
    return np.concatenate([pool, np.array(missing, dtype=np.intp)]) if missing else pool


def step_distribution(
    logits: FloatArray,
    *,
    top_n: int,
    greedy: bool,
    top_k: int,
    top_p: float,
    min_p: float,
    temperature: float,
    repeat_penalty: float = 1.0,
    history: Sequence[int] = (),
    repeat_last_n: int = 0,
    extra_ids: Sequence[int] = (),
) -> StepDistribution:
    """Top-N candidates with raw and final probabilities, entropy, and p_final of ``extra_ids``.

    Works on a pool of the most likely tokens (one partial sort of the vocabulary) and falls
    back to the whole vocabulary only when the pool cannot give exact answers. Greedy mode
    (or temperature 0) ignores penalties: pure arg-max of the raw logits, like the engine.
    """
    sampling = not (greedy or temperature <= 0.0)
    n_pen = 0
    pen_ids = np.empty(0, dtype=np.intp)
    if sampling and repeat_penalty != 1.0:
        pen_ids = penalized_ids(history, repeat_last_n)
        n_pen = pen_ids.shape[0]
    pool_size = max(top_n, top_k if top_k > 0 else POOL_MIN) + n_pen if sampling else top_n
    log_norm, entropy, ranked, top_ids, top_logits, top_p_raw = _rank(logits, top_n, pool_size)
    wanted = list(dict.fromkeys([*top_ids, *extra_ids]))

    if not sampling:
        best = top_ids[0] if top_ids else int(np.argmax(logits))  # the arg-max (ties: lowest id)
        p_final = [1.0 if t == best else 0.0 for t in top_ids]
        cuts: list[CutBy | None] = [None if t == best else CutBy.GREEDY for t in top_ids]
        extra = {t: (1.0 if t == best else 0.0) for t in extra_ids}
        return StepDistribution(top_ids, top_logits, top_p_raw, p_final, cuts, entropy, log_norm, extra)

    p_of: dict[int, float] = {}
    cut_of: dict[int, CutBy | None] = {}
    chain_ids: NDArray[np.intp] | None = None

    if top_k <= 0 and top_p >= 1.0 and min_p <= 0.0:
        # No filter: everything survives; only the temperature reshapes the distribution.
        full = penalize(logits, pen_ids, repeat_penalty).astype(np.float64) / temperature
        norm_t = log_sum_exp(full)
        for token in wanted:
            p_of[token] = math.exp(float(full[token]) - norm_t)
            cut_of[token] = None
    else:
        result: FilterResult | None = None
        pool: NDArray[np.intp] | None = None
        if ranked is not None:
            pool = ranked  # sorted by raw logit: the top-N come first
            pen_log_norm = log_norm
            pool = _with_penalized(pool, pen_ids)
            pool_logits = logits[pool].astype(np.float64)
            if top_k > 0:
                chain_ids = pool
            if n_pen:
                raw_pen = logits[pen_ids].astype(np.float64)
                pen_vals = _penalize_values(raw_pen, repeat_penalty)
                sorter = np.argsort(pool, kind="stable")
                pool_logits[sorter[np.searchsorted(pool, pen_ids, sorter=sorter)]] = pen_vals
                # log-sum-exp of the penalized vocabulary, derived from the raw one
                total = (
                    1.0 - float(np.exp(raw_pen - log_norm).sum()) + float(np.exp(pen_vals - log_norm).sum())
                )
                pen_log_norm = log_norm + math.log(max(total, 1e-300))
            candidate = apply_samplers(
                pool_logits,
                top_k=top_k,
                top_p=top_p,
                min_p=min_p,
                temperature=temperature,
                log_normalizer=pen_log_norm,
            )
            guaranteed = pool_size - n_pen  # the pool's top `guaranteed` are the true top ones
            if candidate.complete and max(candidate.kept_after_top_p, candidate.kept) <= guaranteed:
                result = candidate
        if result is None:
            pool = None
            full = penalize(logits, pen_ids, repeat_penalty).astype(np.float64)
            result = apply_samplers(full, top_k=top_k, top_p=top_p, min_p=min_p, temperature=temperature)
        for rank, token in enumerate(wanted):
            index: int | None = token
            if pool is not None and rank < len(top_ids):
                index = rank  # the pool starts with the top-N
            elif pool is not None:
                hits = np.flatnonzero(pool == token)
                index = int(hits[0]) if hits.shape[0] else None
            if index is None:  # outside the pool: ranks below everything the samplers kept
                p_of[token] = 0.0
                cut_of[token] = _cut_outside(top_k, top_p)
            else:
                p_of[token] = float(result.p_final[index])
                cut_of[token] = result.cut_at(index)

    return StepDistribution(
        top_ids,
        top_logits,
        top_p_raw,
        [p_of[t] for t in top_ids],
        [cut_of[t] for t in top_ids],
        entropy,
        log_norm,
        {t: p_of[t] for t in extra_ids},
        chain_ids,
    )


def step_candidates(
    logits: FloatArray,
    *,
    top_n: int,
    pool_k: int,
    repeat_penalty: float = 1.0,
    history: Sequence[int] = (),
    repeat_last_n: int = 0,
) -> StepDistribution:
    """The raw half of :func:`step_distribution`, for an engine whose sampler chain says what
    happened to each candidate: the top-N by raw logit with their raw probabilities, the entropy,
    the log-normalizer and (``pool_k`` > 0, top-k on) the chain pool. Exactly the numbers
    step_distribution gives for these, without working out final probabilities or cuts
    (``top_p_final`` is NaN and ``top_cut_by`` None for each: the caller fills them in).

    One selection of the top (``max(top_n, pool_k)`` + penalized) tokens serves both the
    candidates and the pool, as in step_distribution.
    """
    pen_ids = np.empty(0, dtype=np.intp)
    if pool_k > 0 and repeat_penalty != 1.0:
        pen_ids = penalized_ids(history, repeat_last_n)
    pool_size = max(top_n, pool_k) + pen_ids.shape[0] if pool_k > 0 else top_n
    log_norm, entropy, ranked, top_ids, top_logits, top_p_raw = _rank(logits, top_n, pool_size)
    pool = _with_penalized(ranked, pen_ids) if pool_k > 0 and ranked is not None else None
    count = len(top_ids)
    return StepDistribution(
        top_ids, top_logits, top_p_raw, [math.nan] * count, [None] * count, entropy, log_norm, {}, pool
    )


def chain_pool(
    logits: FloatArray, *, top_k: int, history: Sequence[int], repeat_penalty: float, repeat_last_n: int
) -> NDArray[np.intp] | None:
    """Token ids a top-k sampler chain can be fed instead of the whole vocabulary (see
    ``StepDistribution.chain_pool``): the top (k + penalized) by raw logit plus every penalized
    token. None when top-k is off or the pool would not be much smaller than the vocabulary."""
    if top_k <= 0:
        return None
    pen_ids = penalized_ids(history, repeat_last_n) if repeat_penalty != 1.0 else np.empty(0, dtype=np.intp)
    size = top_k + pen_ids.shape[0]
    if size >= logits.shape[0] // 4:
        return None
    return _with_penalized(top_n_indices(logits, size, peak=float(np.max(logits))), pen_ids)


def _penalize_values(values: NDArray[np.float64], repeat_penalty: float) -> NDArray[np.float64]:
    """The repeat penalty on float32 values, as llama.cpp computes it."""
    as32 = values.astype(np.float32)
    penalty = np.float32(repeat_penalty)
    result: NDArray[np.float64] = np.where(as32 <= 0, as32 * penalty, as32 / penalty).astype(np.float64)
    return result


def _cut_outside(top_k: int, top_p: float) -> CutBy:
    """Which sampler cut a token ranking below a pool that held every survivor."""
    if top_k > 0:
        return CutBy.TOP_K
    if top_p < 1.0:
        return CutBy.TOP_P
    return CutBy.MIN_P
