"""The compiled statistics pass (tui/engine/_logitstats.c) against float64 brute force and against the
numpy path it replaces: the same peak, log-normalizer, entropy and top-N, on every shape of logits a
model gives (large vocabularies, ties, -inf bans, NaN, sizes that are not a multiple of its blocks)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tui.engine import sampling_math as sm

LOG2 = math.log(2.0)


def brute(logits: np.ndarray) -> tuple[float, float, float]:
    """(peak, log-normalizer, entropy in bits) in float64 over the finite logits."""
    x = logits.astype(np.float64)
    x = x[np.isfinite(x)]
    peak = float(x.max())
    w = np.exp(x - peak)
    z = float(w.sum())
    entropy = (math.log(z) - float((w * (x - peak)).sum()) / z) / LOG2
    return peak, peak + math.log(z), max(entropy, 0.0)


def brute_top(logits: np.ndarray, n: int) -> list[int]:
    """The n largest logits' ids, largest first, ties by lower id (a stable full sort)."""
    order: list[int] = np.argsort(-logits.astype(np.float64), kind="stable")[:n].tolist()
    return order


def sample_logits(rng: np.random.Generator, size: int, *, ties: bool = False, bans: int = 0) -> np.ndarray:
    logits = (rng.standard_normal(size) * rng.uniform(1.0, 6.0) + rng.uniform(-20.0, 20.0)).astype(np.float32)
    logits[rng.integers(size, size=5)] += np.float32(rng.uniform(0.0, 30.0))
    if ties:
        logits = np.round(logits)
    if bans:
        logits[rng.integers(size, size=bans)] = -np.inf
    return logits


def test_the_compiled_pass_is_built() -> None:
    """install.sh builds it (pyproject's ext-modules): without it large vocabularies are slower."""
    assert sm._native is not None, "tui/engine/_logitstats.c was not compiled: run tui/scripts/install.sh"


@pytest.mark.parametrize("size", [262_144, 151_936, 49_152, 1_000, 1_023 * 17 + 5])
def test_stats_match_float64(size: int) -> None:
    rng = np.random.default_rng(size)
    for trial in range(6):
        logits = sample_logits(rng, size, ties=trial % 3 == 0, bans=3 if trial % 2 else 0)
        peak, log_norm, entropy, top = sm.stats_top(logits, 10)
        want_peak, want_norm, want_entropy = brute(logits)
        assert peak == want_peak
        assert log_norm == pytest.approx(want_norm, abs=2e-6)
        assert entropy == pytest.approx(want_entropy, abs=2e-6)
        if top is not None:
            assert top.tolist() == brute_top(logits, 10)


def test_top_ids_equal_a_stable_sort_even_with_ties() -> None:
    """Tied logits: the lower id first, and at the cut the lower ids are the ones kept."""
    rng = np.random.default_rng(7)
    logits = np.round(rng.standard_normal(262_144) * 2).astype(np.float32)  # thousands of ties
    for n in (1, 10, 40, 100):
        _, _, _, top = sm.stats_top(logits, n)
        assert top is not None
        assert top.tolist() == brute_top(logits, n)


def test_rank_is_the_same_with_and_without_the_compiled_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """What every token event carries, from the compiled pass and from numpy's passes (finite logits, as
    llama.cpp's are: numpy's entropy is NaN with a -inf logit, the compiled pass counts it as p = 0)."""
    rng = np.random.default_rng(3)
    for trial in range(8):
        logits = sample_logits(rng, 262_144, ties=trial % 2 == 1)
        pool = 40 + trial
        fast = sm._rank(logits, 10, pool)
        with monkeypatch.context() as patch:
            patch.setattr(sm, "_native", None)
            slow = sm._rank(logits, 10, pool)
        assert fast.ranked is not None and slow.ranked is not None
        assert fast.ranked.tolist() == brute_top(logits, pool)
        # numpy's argpartition may keep any of the tokens tied at the cut: the same logits, in order
        assert logits[fast.ranked].tolist() == logits[slow.ranked].tolist()
        if trial % 2 == 0:  # no ties
            assert fast.top_ids == slow.top_ids
        assert fast.log_normalizer == pytest.approx(slow.log_normalizer, abs=2e-6)
        assert fast.entropy_bits == pytest.approx(slow.entropy_bits, abs=2e-6)
        assert fast.top_p_raw == pytest.approx(slow.top_p_raw, rel=1e-5)


def test_a_margin_with_too_few_tokens_falls_back_to_the_exact_search() -> None:
    """One token far above the rest: the first margin holds fewer than n; the answer is still exact."""
    logits = np.linspace(-5.0, 0.0, 262_144, dtype=np.float32)
    logits[1234] = 40.0
    sm._SCRATCH.margin_hint.pop(10, None)
    for _ in range(3):  # the margin hint moves between calls: every call must be right
        ranked = sm._rank(logits, 10, 10)
        assert ranked.top_ids == brute_top(logits, 10)
        assert ranked.log_normalizer == pytest.approx(brute(logits)[1], abs=2e-6)


def test_nan_logits_take_numpys_path() -> None:
    logits = np.zeros(100_000, dtype=np.float32)
    logits[17] = np.nan
    assert math.isnan(sm.stats_top(logits, 10)[0])
    assert sm.stats_top(logits, 10)[3] is None


def test_every_token_banned_but_one() -> None:
    logits = np.full(262_144, -np.inf, dtype=np.float32)
    logits[99] = 1.5
    peak, log_norm, entropy, _ = sm.stats_top(logits, 1)
    assert (peak, log_norm, entropy) == (1.5, 1.5, 0.0)


def test_the_compiled_pass_checks_its_buffers() -> None:
    native = sm._native
    assert native is not None
    with pytest.raises(ValueError):
        native.stats(np.zeros(10, dtype=np.float32), 8.0, np.zeros(0, dtype=np.int32))
    with pytest.raises(TypeError):
        native.stats(np.zeros(10, dtype=np.float32), 8.0, b"read-only")
