"""The what-if maths on synthetic distributions, checked against a plain full-vocabulary reference."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest

from settings.sampling import SamplingMode, SamplingParams
from tests.inspector.inspector_reference import reference, softmax, top_candidates
from tui.engine.events import Candidate, CutBy, TokenEvent
from tui.engine.whatif import (
    WhatIfParams,
    actual_step,
    confidence_values,
    least_confident,
    log_normalizer_of,
    outside_candidate,
    repeat_penalty_ids,
    what_if,
)

N = 10
TOL = 1e-9


def classic() -> tuple[list[float], list[str]]:
    """The lecture figure: cake 0.20, donut 0.10, banana 0.02, ... and a long thin tail."""
    head = [("cake", 0.20), ("donut", 0.10), ("banana", 0.02), ("bread", 0.015), ("pie", 0.01)]
    tail = 300
    rest = (1.0 - sum(p for _, p in head)) / tail
    probs = [p for _, p in head] + [rest * (1 + 0.5 * math.sin(i)) for i in range(tail)]
    total = sum(probs)
    logits = [math.log(p / total) + 3.0 for p in probs]  # an arbitrary shift: logits, not log-probs
    texts = [t for t, _ in head] + [f"w{i}" for i in range(tail)]
    return logits, texts


def distributions() -> list[tuple[str, list[float]]]:
    """Peaked, flat, Zipf-like and random vocabularies of a few hundred tokens."""
    rng = random.Random(7)
    vocab = 400
    return [
        ("classic", classic()[0]),
        ("peaked", [12.0, 6.0, 5.5, 3.0] + [rng.gauss(0, 1) for _ in range(vocab - 4)]),
        ("flat", [rng.uniform(0, 0.3) for _ in range(vocab)]),
        ("zipf", [-1.1 * math.log(r + 1) for r in range(vocab)]),
        ("random", [rng.gauss(0, 3) for _ in range(vocab)]),
        ("ties", [2.0, 2.0, 2.0, 1.0, 1.0] + [0.0] * (vocab - 5)),
    ]


SETTINGS = [
    WhatIfParams(1.0, 0, 1.0, 0.0),
    WhatIfParams(0.7, 5, 1.0, 0.0),
    WhatIfParams(1.3, 3, 0.9, 0.0),
    WhatIfParams(0.5, 0, 0.5, 0.0),
    WhatIfParams(0.8, 40, 0.95, 0.05),  # the default preset: top-k beyond the stored candidates
    WhatIfParams(2.0, 0, 1.0, 0.2),
    WhatIfParams(1.0, 0, 0.3, 0.0),
    WhatIfParams(0.9, 10, 0.99, 0.0),
    WhatIfParams(1.0, 0, 1.0, 0.0, greedy=True),
    WhatIfParams(0.0, 40, 0.95, 0.05),
]


def _check_against_reference(
    logits: list[float],
    params: WhatIfParams,
    *,
    chosen: int | None = None,
    penalized: frozenset[int] = frozenset(),
) -> bool:
    """What-if on the top N of ``logits`` vs the reference on all of them; returns ``exact``."""
    candidates = top_candidates(logits, N)
    chosen = candidates[1].token_id if chosen is None else chosen
    probs = softmax(logits)
    outside_ids = {c.token_id for c in candidates}
    outside = None
    if chosen not in outside_ids:  # the drawn token ranks past the top N
        event = TokenEvent(0, chosen, "x", "x", probs[chosen], 0.0, tuple(candidates), 0.0, 0, 0.0)
        outside = outside_candidate(event)
        assert outside is not None and outside.logit == pytest.approx(logits[chosen], abs=1e-9)
    step = what_if(candidates, params, chosen, penalized=penalized, outside=outside)
    ref = reference(
        logits,
        top_k=params.top_k,
        top_p=params.top_p,
        min_p=params.min_p,
        temperature=params.temperature,
        greedy=params.greedy,
        penalized=penalized,
        repeat_penalty=params.repeat_penalty,
    )
    assert [r.token_id for r in step.top] == ref.order[:N]
    for row in step.rows:
        assert row.p_raw == pytest.approx(ref.p_raw[row.token_id], abs=TOL)
        if not row.outside:
            assert row.cum_raw == pytest.approx(ref.cum_raw[row.token_id], abs=TOL)
        assert row.chosen == (row.token_id == chosen)
    assert step.chosen is not None and step.chosen.outside == (outside is not None)
    shown = [r.token_id for r in step.rows]
    survivors_beyond = any(ref.cut_by[i] is None for i in ref.order[N:] if i not in shown)
    if step.exact:
        assert not survivors_beyond, "claimed exact while survivors go on past the top N"
        for row in step.rows:
            assert row.p_final == pytest.approx(ref.p_final[row.token_id], abs=TOL)
            assert (row.cut_by is None) == (ref.cut_by[row.token_id] is None)
            if not row.uncertain:  # (uncertain here: top-p or min-p, but surely cut)
                assert (row.cut_by.value if row.cut_by else None) == ref.cut_by[row.token_id]
        ref_entropy = -sum(p * math.log2(p) for p in ref.p_final.values() if p > 0)
        assert step.draw_entropy_bits == pytest.approx(ref_entropy, abs=1e-7)
    else:
        # Not exact: the p_final shown are renormalised within the rows shown; they still sum to
        # 1 over the survivors shown, and no sure cut is wrong.
        assert sum(r.p_final for r in step.rows) == pytest.approx(1.0)
    for row in step.rows:
        if row.cut_by is not None and not row.uncertain:
            assert ref.cut_by[row.token_id] is not None  # a sure cut is a real cut
    return step.exact


@pytest.mark.parametrize("name,logits", distributions(), ids=[d[0] for d in distributions()])
def test_every_number_matches_the_reference(name: str, logits: list[float]) -> None:
    exact = [_check_against_reference(logits, params) for params in SETTINGS]
    # Greedy, top-k within the candidates and temperature 0 are always exact.
    assert exact[1] and exact[2] and exact[8] and exact[9]


def test_classic_figure_numbers() -> None:
    logits, texts = classic()
    candidates = top_candidates(logits, N, texts)
    step = what_if(candidates, WhatIfParams(1.0, 0, 1.0, 0.0), chosen_id=0)
    head = {r.text: r.p_raw for r in step.rows[:5]}
    total = sum(math.exp(v) for v in logits)
    assert head["cake"] == pytest.approx(math.exp(logits[0]) / total)
    assert [r.text for r in step.rows[:3]] == ["cake", "donut", "banana"]
    assert head["donut"] / head["cake"] == pytest.approx(0.5)
    # Nothing cut at T=1 without filters, and the survivors go on past the top 10: not exact.
    assert step.exact is False
    assert all(r.cut_by is None for r in step.rows)


def test_top_k_beyond_the_candidates_is_exact_only_when_the_bounds_agree() -> None:
    # Peaked: top-p 0.5 is reached by the first token under any top-k mass: exact.
    peaked = [10.0, 5.0] + [0.0] * 300
    step = what_if(top_candidates(peaked, N), WhatIfParams(1.0, 40, 0.5, 0.0), None)
    assert step.exact and step.kept == 1
    # Flat: top-p 0.95 needs tokens beyond the top 10: not exact.
    flat = [0.0] * 300
    step = what_if(top_candidates(flat, N), WhatIfParams(1.0, 40, 0.95, 0.0), None)
    assert not step.exact


def test_log_normalizer_recovered_from_candidates() -> None:
    logits = distributions()[4][1]
    candidates = top_candidates(logits, N)
    expected = math.log(sum(math.exp(v) for v in logits))
    assert log_normalizer_of(candidates) == pytest.approx(expected, abs=1e-9)


def test_actual_step_reports_the_engine_numbers_and_chosen() -> None:
    cands = (
        Candidate(5, " the", 2.0, 0.5, 0.7, None),
        Candidate(6, " a", 1.0, 0.5 / math.e, 0.3, None),
        Candidate(7, "\n", 0.0, 0.5 / math.e**2, 0.0, CutBy.MIN_P),
    )
    event = TokenEvent(0, 6, " a", " a", cands[1].p_raw, 0.3, cands, 1.5, 3, 1.0)
    params = SamplingParams(temperature=0.5, min_p=0.2)
    step = actual_step(event, params)
    assert [r.p_final for r in step.rows] == [0.7, 0.3, 0.0]
    assert [r.cut_by for r in step.rows] == [None, None, CutBy.MIN_P]
    assert step.chosen is not None and step.chosen.token_id == 6
    assert step.params == WhatIfParams(0.5, 40, 0.95, 0.2, repeat_penalty=1.1)
    assert step.rows[2].cum_raw == pytest.approx(0.5 * (1 + 1 / math.e + 1 / math.e**2))
    greedy = actual_step(event, SamplingParams(mode=SamplingMode.GREEDY))
    assert greedy.params.is_greedy


def test_least_confident_and_strip_values() -> None:
    def event(i: int, p_raw: float, entropy: float) -> TokenEvent:
        return TokenEvent(i, i, "x", "x", p_raw, 1.0, (), entropy, 0, 1.0)

    events = [event(0, 0.9, 0.5), event(1, 0.2, 3.0), event(2, math.nan, math.nan), event(3, 0.2, 2.0)]
    assert least_confident(events) == 1  # the first of the ties, NaN skipped
    assert least_confident([]) is None
    assert confidence_values(events)[:2] == [0.9, 0.2]
    assert confidence_values(events, by="entropy")[3] == 2.0


def test_rows_whose_top_p_cut_depends_on_unknown_mass_are_marked() -> None:
    logits = dict(distributions())["zipf"]
    step = what_if(top_candidates(logits, N), WhatIfParams(0.8, 40, 0.95, 0.05), None)
    ref = reference(logits, top_k=40, top_p=0.95, min_p=0.05, temperature=0.8)
    assert not step.exact
    unsure = [r for r in step.rows if r.uncertain]
    assert unsure, "the top-p cut of the last candidates depends on the mass beyond the top 10"
    for row in step.rows:
        if not row.uncertain and row.cut_by is not None:
            assert ref.cut_by[row.token_id] == row.cut_by.value  # a sure cut is a real cut


@pytest.mark.parametrize("name,logits", distributions(), ids=[d[0] for d in distributions()])
@pytest.mark.parametrize("penalty", [1.3, 0.8])
def test_repeat_penalty_is_reapplied(name: str, logits: list[float], penalty: float) -> None:
    order = sorted(range(len(logits)), key=lambda i: (-logits[i], i))
    # Penalise some candidates, and (for a harder case) one token past the top N.
    for penalized in (frozenset(order[1:3]), frozenset([order[0], order[4], order[30]])):
        for params in SETTINGS:
            _check_against_reference(logits, dataclasses.replace(params, repeat_penalty=penalty),
                                     penalized=penalized)  # fmt: skip


@pytest.mark.parametrize("name,logits", distributions(), ids=[d[0] for d in distributions()])
def test_a_chosen_token_past_the_top_n_gets_its_own_row(name: str, logits: list[float]) -> None:
    order = sorted(range(len(logits)), key=lambda i: (-logits[i], i))
    for chosen in (order[N], order[N + 25]):
        for params in SETTINGS:
            _check_against_reference(logits, params, chosen=chosen)


def test_actual_step_with_the_chosen_token_outside_the_candidates() -> None:
    cands = (
        Candidate(5, " the", 2.0, 0.5, 0.6, None),
        Candidate(6, " a", 1.0, 0.5 / math.e, 0.4, None),
    )
    event = TokenEvent(3, 99, " all", " all", 0.01, 0.02, cands, 4.0, 0, 1.0)
    step = actual_step(event, SamplingParams(top_k=0, top_p=1.0, min_p=0.0), frozenset({5}))
    assert [r.token_id for r in step.rows] == [5, 6, 99]
    last = step.rows[-1]
    assert last.outside and last.chosen and last.p_final == 0.02 and math.isnan(last.cum_raw)
    assert last.logit == pytest.approx(math.log(0.01) + 2.0 - math.log(0.5))
    assert step.n == 2 and step.kept == 2 and step.rows[0].penalized and not step.rows[1].penalized


def test_repeat_penalty_ids_are_the_recent_reply_tokens() -> None:
    assert repeat_penalty_ids([1, 2, 3, 2, 4], 3) == frozenset({3, 2, 4})
    assert repeat_penalty_ids([1, 2], 0) == frozenset()
