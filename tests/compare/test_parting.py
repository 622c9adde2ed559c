"""Where columns part, whether columns fit, and parameter sets from text (no model needed)."""

from __future__ import annotations

import pytest

from settings.sampling import DEFAULT_PRESETS, SamplingMode, SamplingParams
from tui.engine.batch import MAX_COLUMNS, fit_problem, kv_needed
from tui.engine.events import Candidate, StopKind, StopReason, TokenEvent
from tui.engine.param_sets import (
    SWEEPS,
    ParamSetError,
    describe,
    parse_param_set,
    parse_param_sets,
    sweep_sets,
)
from tui.engine.parting import where_they_part


def token(index: int, token_id: int, text: str, p: float, *others: tuple[int, float]) -> TokenEvent:
    candidates = tuple(Candidate(tid, f"t{tid}", 0.0, cp, cp, None) for tid, cp in ((token_id, p), *others))
    return TokenEvent(index, token_id, text, text, p, p, candidates, 1.0, 0, 1.0)


EOS = StopReason(StopKind.EOS, token_id=2, token_text="<|im_end|>", generated=3)
CAP = StopReason(StopKind.MAX_TOKENS, limit=3, generated=3)


def test_they_part_at_the_first_different_token_with_both_candidates() -> None:
    a = [token(0, 5, "The", 0.9), token(1, 6, " sea", 0.62, (7, 0.21))]
    b = [token(0, 5, "The", 0.9), token(1, 7, " sky", 0.21, (6, 0.62))]
    parting = where_they_part([a, b], [None, None])
    assert parting is not None and parting.index == 1
    first, second = parting.choices
    assert (first.token_id, first.p_raw, first.others) == (6, 0.62, ((7, 0.21),))
    assert (second.token_id, second.p_raw, second.others) == (7, 0.21, ((6, 0.62),))
    assert "parted at token 1" in parting.describe() and "' sky' p=0.21" in parting.describe()


def test_undecided_while_a_shorter_column_runs_then_it_ended_there() -> None:
    a = [token(0, 5, "A", 0.9)]
    b = [token(0, 5, "A", 0.9), token(1, 8, "B", 0.5)]
    assert where_they_part([a, b], [None, None]) is None
    parting = where_they_part([a, b], [EOS, None])
    assert parting is not None and parting.index == 1
    assert parting.choices[0].token_id is None and "end of sequence" in parting.choices[0].text
    assert parting.choices[1].token_id == 8


def test_same_tokens_part_only_by_how_they_ended() -> None:
    same = [token(0, 5, "A", 0.9), token(1, 6, "B", 0.9), token(2, 7, "C", 0.9)]
    assert where_they_part([same, same], [EOS, EOS]) is None
    assert where_they_part([same, same], [None, None]) is None
    parting = where_they_part([same, same], [EOS, CAP])
    assert parting is not None and parting.index == 3
    assert where_they_part([same], [EOS]) is None


def test_fit_says_what_fits() -> None:
    sets = [SamplingParams(max_new_tokens=400)] * 3
    assert kv_needed(30, sets) == 1230
    problem = fit_problem(30, sets, 1024)
    assert problem is not None
    assert "1230 tokens" in problem and "2 columns fit" in problem and "<= 331 each" in problem
    assert fit_problem(30, sets, 2048) is None
    assert fit_problem(1020, [SamplingParams()] * 2, 1024) is not None
    assert "at most" in (fit_problem(10, [SamplingParams(max_new_tokens=1)] * (MAX_COLUMNS + 1), 4096) or "")


def test_parameter_sets_from_text() -> None:
    base = SamplingParams()
    assert parse_param_set("temperature=0.2", base, DEFAULT_PRESETS).temperature == 0.2
    both = parse_param_set("mode=greedy, max-new-tokens=100", base, DEFAULT_PRESETS)
    assert both.mode is SamplingMode.GREEDY and both.max_new_tokens == 100
    creative = parse_param_set("creative,seed=3", base, DEFAULT_PRESETS)
    assert creative.temperature == DEFAULT_PRESETS["creative"].temperature and creative.seed == 3
    with pytest.raises(ParamSetError, match=r"set 2 \('temperature=9'\): temperature"):
        parse_param_sets(["temperature=0.2", "temperature=9"], base, DEFAULT_PRESETS)
    with pytest.raises(ParamSetError, match="'tempo' is not a sampling parameter"):
        parse_param_set("tempo=1", base, DEFAULT_PRESETS)
    with pytest.raises(ParamSetError, match="no preset 'wild'"):
        parse_param_set("wild", base, DEFAULT_PRESETS)


def test_sweeps_and_labels() -> None:
    base = SamplingParams()
    temps = sweep_sets(SWEEPS[0], base)
    assert [p.temperature for p in temps] == [0.2, 0.8, 1.5]
    assert [describe(p, base) for p in temps] == [
        "temperature 0.2",
        "T 0.8 · top-k 40 · top-p 0.95 · min-p 0.05 · max 256",
        "temperature 1.5",
    ]
    caps = sweep_sets(SWEEPS[1], base)
    assert [p.max_new_tokens for p in caps] == [100, 150, 200]
    assert describe(SamplingParams(mode=SamplingMode.GREEDY)) == "greedy · max 256"
