"""Sampling maths on synthetic logits, checked against independent brute-force computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tui.engine.events import CutBy
from tui.engine.sampling_math import (
    apply_samplers,
    entropy_bits,
    log_sum_exp,
    logit_stats,
    penalize,
    penalized_ids,
    softmax,
    step_distribution,
    top_n_indices,
)

# The classic lecture example: cake 0.20, donut 0.10, banana 0.02, ... (the rest spread thinly).
CLASSIC_HEAD = [0.20, 0.10, 0.02, 0.015, 0.01]


def classic_logits(tail: int = 200) -> np.ndarray:
    """Log-probabilities whose softmax is CLASSIC_HEAD followed by a flat tail summing to 1."""
    rest = (1.0 - sum(CLASSIC_HEAD)) / tail
    probs = np.array([*CLASSIC_HEAD, *([rest] * tail)])
    logits: np.ndarray = np.log(probs)
    return logits


def brute_p_final(logits: np.ndarray, keep: np.ndarray, temperature: float) -> np.ndarray:
    """Independent reference: softmax over the kept tokens at a temperature, 0 elsewhere."""
    out = np.zeros(logits.shape[0])
    scaled = logits[keep] / temperature
    e = np.exp(scaled - scaled.max())
    out[keep] = e / e.sum()
    return out


def test_classic_top_p_keeps_exactly_first_two() -> None:
    logits = classic_logits()
    result = apply_samplers(logits, top_k=0, top_p=0.3, min_p=0.0, temperature=1.0)
    assert result.kept == 2
    assert result.cut_at(0) is None and result.cut_at(1) is None
    assert all(result.cut_at(i) is CutBy.TOP_P for i in range(2, logits.shape[0]))
    # Survivors renormalised: 0.2/0.3 and 0.1/0.3.
    assert result.p_final[0] == pytest.approx(2 / 3)
    assert result.p_final[1] == pytest.approx(1 / 3)
    assert result.p_final[2:].sum() == 0.0


def test_classic_top_p_just_above_keeps_three() -> None:
    result = apply_samplers(classic_logits(), top_k=0, top_p=0.31, min_p=0.0, temperature=1.0)
    assert result.kept == 3


def test_classic_top_k_three_keeps_three() -> None:
    logits = classic_logits()
    result = apply_samplers(logits, top_k=3, top_p=1.0, min_p=0.0, temperature=1.0)
    assert result.kept == 3
    assert [result.cut_at(i) for i in range(4)] == [None, None, None, CutBy.TOP_K]
    expected = np.array([0.2, 0.1, 0.02]) / 0.32
    np.testing.assert_allclose(result.p_final[:3], expected)


def test_temperature_sharpens_flattens_and_one_is_identity() -> None:
    logits = classic_logits()
    base = softmax(logits)
    same = apply_samplers(logits, top_k=0, top_p=1.0, min_p=0.0, temperature=1.0).p_final
    np.testing.assert_allclose(same, base)
    sharp = apply_samplers(logits, top_k=0, top_p=1.0, min_p=0.0, temperature=0.5).p_final
    flat = apply_samplers(logits, top_k=0, top_p=1.0, min_p=0.0, temperature=2.0).p_final
    assert sharp[0] > base[0] > flat[0]
    assert sharp[-1] < base[-1] < flat[-1]
    assert entropy_bits(np.log(sharp)) < entropy_bits(logits) < entropy_bits(np.log(flat))
    np.testing.assert_allclose(sharp, brute_p_final(logits, np.arange(logits.shape[0]), 0.5))


def test_min_p_cuts_below_fraction_of_best() -> None:
    logits = classic_logits()
    # min_p = 0.1: keep p >= 0.02 -> cake, donut, banana (0.02 == 0.1 * 0.2 is kept).
    result = apply_samplers(logits, top_k=0, top_p=1.0, min_p=0.1 - 1e-9, temperature=1.0)
    assert result.kept == 3
    assert result.cut_at(3) is CutBy.MIN_P


def test_order_of_samplers_top_k_then_top_p_then_min_p() -> None:
    logits = classic_logits()
    # top-k 4 keeps 0.2, 0.1, 0.02, 0.015 (sum 0.335); top-p renormalises over those four:
    # 0.2/0.335 = 0.597 < 0.9, + 0.1/0.335 = 0.896 < 0.9, + 0.02/0.335 -> reached at three.
    result = apply_samplers(logits, top_k=4, top_p=0.9, min_p=0.0, temperature=1.0)
    assert (result.kept_after_top_k, result.kept_after_top_p, result.kept) == (4, 3, 3)
    assert [result.cut_at(i) for i in range(5)] == [None, None, None, CutBy.TOP_P, CutBy.TOP_K]
    # Then min-p 0.2 cuts banana (0.02 < 0.2 * 0.2).
    result = apply_samplers(logits, top_k=4, top_p=0.9, min_p=0.2, temperature=0.7)
    assert result.kept == 2
    assert result.cut_at(2) is CutBy.MIN_P
    np.testing.assert_allclose(result.p_final, brute_p_final(logits, np.array([0, 1]), 0.7))


def test_greedy_keeps_only_argmax() -> None:
    logits = np.array([0.5, 3.0, 2.9, -1.0])
    result = apply_samplers(logits, top_k=40, top_p=0.9, min_p=0.05, temperature=0.8, greedy=True)
    assert result.p_final.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert result.cut_by == (CutBy.GREEDY, None, CutBy.GREEDY, CutBy.GREEDY)


def test_top_n_is_sorted_and_matches_full_sort() -> None:
    rng = np.random.default_rng(3)
    logits = rng.standard_normal(5000).astype(np.float32)
    expected = np.argsort(-logits, kind="stable")[:10]
    assert top_n_indices(logits, 10).tolist() == expected.tolist()
    assert top_n_indices(logits[:5], 10).tolist() == np.argsort(-logits[:5], kind="stable").tolist()


def test_log_sum_exp_and_entropy_against_direct_formulas() -> None:
    rng = np.random.default_rng(4)
    logits = (rng.standard_normal(1000) * 4).astype(np.float32)
    p = np.exp(logits.astype(np.float64)) / np.exp(logits.astype(np.float64)).sum()
    lse, ent = logit_stats(logits)
    assert lse == pytest.approx(math.log(np.exp(logits.astype(np.float64)).sum()), rel=1e-6)
    assert log_sum_exp(logits) == pytest.approx(lse, rel=1e-6)
    assert ent == pytest.approx(float(-(p * np.log2(p)).sum()), rel=1e-5)
    assert entropy_bits(np.zeros(8)) == pytest.approx(3.0)
    assert entropy_bits(np.array([0.0, -1e4])) == pytest.approx(0.0, abs=1e-9)


def test_penalty_divides_positive_and_multiplies_negative() -> None:
    logits = np.array([2.0, -2.0, 1.0, 0.5], dtype=np.float32)
    ids = penalized_ids([0, 1, 1, 3], last_n=3)  # last three: 1, 1, 3
    assert ids.tolist() == [1, 3]
    out = penalize(logits, ids, 2.0)
    assert out.tolist() == [2.0, -4.0, 1.0, 0.25]
    assert logits.tolist() == [2.0, -2.0, 1.0, 0.5]  # input untouched


PARAM_GRID = [
    dict(top_k=40, top_p=0.95, min_p=0.05, temperature=0.8),
    dict(top_k=0, top_p=0.9, min_p=0.0, temperature=1.3),
    dict(top_k=0, top_p=1.0, min_p=0.0, temperature=1.5),
    dict(top_k=0, top_p=1.0, min_p=0.02, temperature=1.0),
    dict(top_k=5, top_p=1.0, min_p=0.0, temperature=0.5),
    dict(top_k=1, top_p=1.0, min_p=0.0, temperature=1.0),
    dict(top_k=0, top_p=0.999, min_p=0.0, temperature=1.0),
]


@pytest.mark.parametrize("params", PARAM_GRID)
@pytest.mark.parametrize("scale", [0.5, 3.0, 8.0])
def test_step_distribution_pool_equals_full_vocabulary(params: dict[str, float], scale: float) -> None:
    """The fast pool path gives the same numbers as the samplers run on the whole vocabulary."""
    rng = np.random.default_rng(int(scale * 10))
    vocab = 4000
    logits = (rng.standard_normal(vocab) * scale).astype(np.float32)
    history = rng.integers(0, 50, size=30).tolist() + top_n_indices(logits, 3).tolist()
    top_k, top_p, min_p, temp = (
        int(params["top_k"]),
        params["top_p"],
        params["min_p"],
        params["temperature"],
    )
    extra = [int(np.argmax(logits)), 7]
    step = step_distribution(
        logits,
        top_n=10,
        greedy=False,
        top_k=top_k,
        top_p=top_p,
        min_p=min_p,
        temperature=temp,
        repeat_penalty=1.3,
        history=history,
        repeat_last_n=64,
        extra_ids=extra,
    )
    full = penalize(logits, penalized_ids(history, 64), 1.3)
    ref = apply_samplers(full, top_k=top_k, top_p=top_p, min_p=min_p, temperature=temp)
    raw = softmax(logits)
    assert step.top_ids == top_n_indices(logits, 10).tolist()
    np.testing.assert_allclose(step.top_p_raw, raw[step.top_ids], rtol=1e-5)
    np.testing.assert_allclose(step.top_p_final, ref.p_final[step.top_ids], rtol=1e-5, atol=1e-12)
    assert step.top_cut_by == [ref.cut_at(t) for t in step.top_ids]
    for token in extra:
        assert step.extra_p_final[token] == pytest.approx(ref.p_final[token], rel=1e-5, abs=1e-12)
    assert step.entropy_bits == pytest.approx(float(-(raw * np.log2(raw)).sum()), rel=1e-4)


def test_step_distribution_greedy_ignores_penalties() -> None:
    logits = np.array([1.0, 3.0, 2.0, 0.0], dtype=np.float32)
    step = step_distribution(
        logits,
        top_n=3,
        greedy=True,
        top_k=40,
        top_p=0.9,
        min_p=0.05,
        temperature=0.8,
        repeat_penalty=5.0,
        history=[1],
        repeat_last_n=64,
        extra_ids=[1],
    )
    assert step.top_ids == [1, 2, 0]
    assert step.top_p_final == [1.0, 0.0, 0.0]
    assert step.top_cut_by == [None, CutBy.GREEDY, CutBy.GREEDY]
    assert step.extra_p_final == {1: 1.0}


def test_subset_with_normalizer_is_exact_when_enough() -> None:
    """What-if on a stored top-N (inspector): exact when top-p is reached inside it."""
    logits = classic_logits()
    lse = log_sum_exp(logits)
    head = logits[:10]
    sub = apply_samplers(head, top_k=0, top_p=0.3, min_p=0.0, temperature=1.0, log_normalizer=lse)
    assert sub.complete and sub.kept == 2
    sub = apply_samplers(head, top_k=0, top_p=0.99, min_p=0.0, temperature=1.0, log_normalizer=lse)
    assert not sub.complete
