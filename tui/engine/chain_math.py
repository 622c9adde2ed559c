"""llama.cpp's deterministic samplers in numpy, stage by stage (no llama.cpp needed).

A port of ``llama-sampler.cpp`` (llama-cpp-python 0.3.36) for the samplers whose result depends
only on the logits and the reply's tokens: logit bias, penalties (repeat, frequency, presence),
top-n-sigma, top-k, typical-p, top-p, min-p, XTC (given whether it fires), temperature and
dynamic temperature, then the draw's softmax. float32 where llama.cpp computes in float.
It runs the same chain as :func:`tui.engine.chain.chain_specs` describes, so fakes and the
what-if can follow the engine's rules; ``tests/engine/test_chain_math.py`` checks it against
llama.cpp's own chain. DRY, grammar and mirostat need llama.cpp (or its state) and are refused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from settings.sampling import SamplerName, SamplingParams
from tui.engine.events import CutBy

F32 = np.float32


class UnsupportedSampler(ValueError):
    """The parameters use a sampler this port does not compute (DRY, grammar, mirostat)."""


@dataclass(frozen=True, slots=True)
class ChainResult:
    """The chain's outcome over the whole vocabulary."""

    p_final: NDArray[np.float64]
    """Per token id: probability after the whole chain (0 where cut)."""
    cut_by: dict[int, CutBy]
    """Token id -> the stage that removed it (survivors are absent)."""
    survivors: tuple[tuple[str, int], ...]
    """(stage, tokens left after it), in chain order."""

    def cut_at(self, token: int) -> CutBy | None:
        """Which stage removed ``token`` (None = it survived)."""
        return self.cut_by.get(token)


class _Array:
    """The candidate array as llama.cpp holds it: ids and logits in array order, a sorted flag."""

    def __init__(self, ids: NDArray[np.intp], logits: NDArray[np.float32]) -> None:
        self.ids = ids
        self.logits = logits
        self.sorted = False

    def keep(self, index: NDArray[np.intp] | slice) -> None:
        self.ids = self.ids[index]
        self.logits = self.logits[index]

    def sort(self) -> None:
        if not self.sorted:
            order = np.argsort(-self.logits, kind="stable")
            self.keep(order)
            self.sorted = True

    def softmax(self, do_sort: bool) -> NDArray[np.float32]:
        """llama_sampler_softmax_impl: p = expf(l - max) / sum (float, summed in array order)."""
        if do_sort:
            self.sort()
        top = F32(self.logits.max())
        e = np.exp(self.logits - top, dtype=F32)
        total = np.cumsum(e, dtype=F32)[-1]
        probs: NDArray[np.float32] = (e / total).astype(F32)
        return probs


def _penalties(arr: _Array, params: SamplingParams, history: Sequence[int]) -> None:
    last_n = params.repeat_last_n
    window = list(history[-last_n:]) if last_n > 0 else []
    if not window:
        return
    counts: dict[int, int] = {}
    for token in window:
        counts[token] = counts.get(token, 0) + 1
    where = np.full(int(arr.ids.max()) + 1, -1, dtype=np.intp)  # token id -> its index in the array
    where[arr.ids] = np.arange(arr.ids.shape[0])
    repeat, freq, present = (
        F32(params.repeat_penalty),
        F32(params.frequency_penalty),
        F32(params.presence_penalty),
    )
    for token, count in counts.items():
        i = int(where[token]) if 0 <= token < where.shape[0] else -1
        if i < 0:
            continue
        value = arr.logits[i]
        value = value * repeat if value <= 0 else value / repeat
        arr.logits[i] = F32(value - (F32(count) * freq + F32(1.0) * present))
    arr.sorted = False


def _top_n_sigma(arr: _Array, n: float) -> NDArray[np.intp]:
    if arr.ids.shape[0] <= 1:
        return np.arange(arr.ids.shape[0])
    valid = arr.logits[arr.logits != -np.inf]
    top = F32(valid.max()) if valid.shape[0] else F32(arr.logits[0])
    mean = F32(np.cumsum(valid, dtype=F32)[-1] / F32(valid.shape[0])) if valid.shape[0] else F32(0)
    acc = F32(0)
    squares = (valid - mean).astype(F32).astype(np.float64) ** 2  # pow(float diff, 2) in double
    for value in squares.tolist():  # float acc += double: rounded to float every step
        acc = F32(float(acc) + value)
    std = F32(math.sqrt(float(acc) / valid.shape[0])) if valid.shape[0] else F32(0)
    keep = ~(arr.logits < F32(top - F32(n) * std))
    return np.flatnonzero(keep)


def _typical(arr: _Array, p: float) -> None:
    probs = arr.softmax(True)
    logs = np.log(probs, dtype=F32)
    entropy = F32(0)
    for term in (-probs * logs).astype(F32).tolist():
        entropy = F32(entropy + F32(term))
    shifted = np.abs(-logs - entropy, dtype=F32)
    order = np.argsort(shifted, kind="stable")
    cumulative = np.cumsum(probs[order], dtype=F32)
    over = np.flatnonzero(cumulative > F32(p))
    last = int(over[0]) + 1 if over.shape[0] else order.shape[0]
    arr.keep(order[:last])
    arr.sorted = False


def _top_p(arr: _Array, p: float) -> None:
    probs = arr.softmax(False)
    order = np.argsort(-arr.logits, kind="stable")
    cumulative = np.cumsum(probs[order], dtype=F32)
    reached = np.flatnonzero(cumulative >= F32(p))
    last = int(reached[0]) + 1 if reached.shape[0] else order.shape[0]
    arr.keep(order[:last])
    arr.sorted = True


def _min_p(arr: _Array, p: float) -> None:
    threshold = F32(F32(arr.logits.max()) + F32(math.log(F32(p))))
    keep = np.flatnonzero(arr.logits >= threshold)
    if keep.shape[0] >= 1:
        arr.keep(keep)  # the unsorted path keeps array order


def _xtc(arr: _Array, threshold: float) -> None:
    if arr.ids.shape[0] < 2:
        return
    probs = arr.softmax(True)
    below = np.flatnonzero(probs < F32(threshold))
    prefix = int(below[0]) if below.shape[0] else probs.shape[0]  # the leading run >= threshold
    pos_last = max(prefix - 1, 0)
    if pos_last > 0 and arr.ids.shape[0] - pos_last >= 1:
        arr.keep(slice(pos_last, None))


def _temperature(arr: _Array, temp: float, delta: float, exponent: float) -> None:
    if delta > 0.0:
        if arr.ids.shape[0] <= 1:
            return
        low, high = max(F32(0), F32(F32(temp) - F32(delta))), F32(F32(temp) + F32(delta))
        max_entropy = F32(-math.log(F32(F32(1.0) / F32(arr.ids.shape[0]))))
        probs = arr.softmax(True)
        entropy = F32(0)
        for prob in probs.tolist():
            if prob > 0.0:
                entropy = F32(entropy - F32(F32(prob) * F32(math.log(F32(prob)))))
        normalized = F32(entropy / max_entropy)
        temp = float(F32(low + (high - low) * F32(math.pow(normalized, F32(exponent)))))
    if temp <= 0.0:
        best = int(np.argmax(arr.logits))
        logits = np.full_like(arr.logits, -np.inf)
        logits[best] = arr.logits[best]
        arr.logits = logits
        return
    arr.logits = (arr.logits / F32(temp)).astype(F32)


def chain_result(
    logits: NDArray[np.floating],
    params: SamplingParams,
    history: Sequence[int] = (),
    *,
    xtc_fires: bool = True,
) -> ChainResult:
    """Run the engine's chain for ``params`` on the whole vocabulary's ``logits`` in numpy.

    ``history``: the reply's tokens so far (penalties); ``xtc_fires``: whether XTC's random draw
    came out below its chance this step. Raises UnsupportedSampler for DRY, grammar, mirostat.
    """
    if params.has_constraint or params.dry_multiplier > 0.0 or (params.mirostat and not params.is_greedy):
        raise UnsupportedSampler("DRY, grammars and mirostat need llama.cpp's own sampler")
    n_vocab = logits.shape[0]
    arr = _Array(np.arange(n_vocab), np.asarray(logits, dtype=F32).copy())
    cut: dict[int, CutBy] = {}
    survivors: list[tuple[str, int]] = []

    def removed(before: NDArray[np.intp], reason: CutBy) -> None:
        gone = np.setdiff1d(before, arr.ids, assume_unique=True)
        cut.update(dict.fromkeys(gone.tolist(), reason))  # a token leaves the array once: first cut

    if params.logit_bias:
        for token, bias in params.logit_bias.items():
            if 0 <= token < n_vocab:
                arr.logits[token] = F32(arr.logits[token] + F32(bias))
        before = arr.ids
        arr.keep(np.flatnonzero(arr.logits > -np.inf))
        removed(before, CutBy.BANNED)
        survivors.append(("logit_bias", arr.ids.shape[0]))
    order = [s for s in params.samplers if params.is_greedy is False or s is SamplerName.PENALTIES]
    for name in order:
        before = arr.ids
        stage: str = name.value
        if name is SamplerName.PENALTIES:
            if params.repeat_last_n == 0 or (params.repeat_penalty == 1.0 and not params.frequency_penalty
                                             and not params.presence_penalty):  # fmt: skip
                continue
            _penalties(arr, params, history)
        elif name is SamplerName.TOP_N_SIGMA:
            if params.top_n_sigma <= 0.0:
                continue
            arr.keep(_top_n_sigma(arr, params.top_n_sigma))
        elif name is SamplerName.TOP_K:
            if params.top_k <= 0:
                continue
            arr.sort()
            arr.keep(slice(0, min(params.top_k, arr.ids.shape[0])))
        elif name is SamplerName.TYP_P:
            if params.typical_p >= 1.0:
                continue
            _typical(arr, params.typical_p)
        elif name is SamplerName.TOP_P:
            if params.top_p >= 1.0:
                continue
            _top_p(arr, params.top_p)
        elif name is SamplerName.MIN_P:
            if params.min_p <= 0.0:
                continue
            _min_p(arr, params.min_p)
        elif name is SamplerName.XTC:
            if params.xtc_probability <= 0.0 or params.xtc_threshold > 0.5:
                continue
            if xtc_fires:
                _xtc(arr, params.xtc_threshold)
        elif name is SamplerName.TEMPERATURE:
            _temperature(arr, params.temperature, params.dynatemp_range, params.dynatemp_exponent)
        elif name is SamplerName.DRY:
            continue
        removed(before, _STAGE_CUT.get(stage, CutBy.TEMPERATURE))
        survivors.append((stage, arr.ids.shape[0]))  # penalties cut nothing: what reached them
    p_final = np.zeros(n_vocab)
    if params.is_greedy:
        best = int(arr.ids[int(np.argmax(arr.logits))])
        for token in arr.ids.tolist():
            if token != best:
                cut.setdefault(int(token), CutBy.GREEDY)
        p_final[best] = 1.0
        survivors.append(("greedy", 1))
    else:
        finite = arr.logits > -np.inf
        for token in arr.ids[~finite].tolist():
            cut.setdefault(int(token), CutBy.TEMPERATURE)
        top = F32(arr.logits.max())
        e = np.exp(arr.logits - top, dtype=F32).astype(np.float64)
        p_final[arr.ids] = e / e.sum()
    return ChainResult(p_final, cut, tuple(survivors))


_STAGE_CUT: dict[str, CutBy] = {
    "top_n_sigma": CutBy.TOP_N_SIGMA,
    "top_k": CutBy.TOP_K,
    "typ_p": CutBy.TYPICAL,
    "top_p": CutBy.TOP_P,
    "min_p": CutBy.MIN_P,
    "xtc": CutBy.XTC,
}


def is_supported(params: SamplingParams) -> bool:
    """Whether :func:`chain_result` can compute ``params`` (no DRY, grammar or mirostat)."""
    return not (
        params.has_constraint or params.dry_multiplier > 0.0 or (params.mirostat and not params.is_greedy)
    )


__all__ = ["ChainResult", "UnsupportedSampler", "chain_result", "is_supported"]
