"""The FakeEngine obeys the real engine's rules and maths.

Its candidates, cuts, final probabilities and entropy are checked against the plain reference
sampler chain (inspector_reference: Python loops over the whole vocabulary, sharing no code with
the engine), which test_inspector_real.py checks the real engine against on the default model:
the fake reports what the real engine would for the same logits. Reordered chains and the other
samplers (typical-p, top-n-sigma, XTC, frequency/presence penalties, logit bias) are checked
against llama.cpp's own sampler chain applied to the fake's logits (test_chain_exact's reference,
built from the bindings: no model needed for these samplers).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from settings.sampling import SamplerName, SamplingMode, SamplingParams
from tests.engine.test_chain_exact import reference_survivors
from tests.fakes import DEFAULT_SCRIPT, EOS_ID, FAKE_VOCAB, FakeEngine, ScriptedToken, _as_scripted
from tests.inspector.inspector_fakes import CAKE, LECTURE_SCRIPT, BranchingFake
from tests.inspector.inspector_reference import reference
from tui.engine.chain import chain_specs
from tui.engine.chain_math import UnsupportedSampler
from tui.engine.events import ChatMessage, CutBy, EngineEvent, ReplyDone, StopKind, TokenEvent
from tui.engine.live import LiveParams

PARAMS = [
    SamplingParams(temperature=0.7, top_k=4, top_p=0.9, min_p=0.05, repeat_penalty=1.0, seed=7),
    SamplingParams(temperature=1.3, top_k=0, top_p=0.95, min_p=0.0, repeat_penalty=1.3, repeat_last_n=8),
    SamplingParams(temperature=0.8, top_k=40, top_p=1.0, min_p=0.2, repeat_penalty=1.1),
    SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0),
]
ASK = [ChatMessage("user", "What did you have?")]


def _reply(engine: FakeEngine, params: SamplingParams, **kwargs: object) -> list[EngineEvent]:
    return list(engine.stream_reply(ASK, LiveParams(params), threading.Event(), **kwargs))  # type: ignore[arg-type]


def _tokens(events: list[EngineEvent]) -> list[TokenEvent]:
    return [e for e in events if isinstance(e, TokenEvent)]


def _done(events: list[EngineEvent]) -> ReplyDone:
    done = events[-1]
    assert isinstance(done, ReplyDone)
    return done


@pytest.mark.parametrize("params", PARAMS, ids=["top-k-4", "top-p-penalty", "min-p", "greedy"])
def test_candidates_follow_the_reference_sampler_chain(params: SamplingParams) -> None:
    """Each token's candidates, cuts, p_final and entropy equal the reference chain's on its logits,
    with the repeat penalty over the reply so far; the drawn token is one the samplers kept."""
    script = (*LECTURE_SCRIPT, *LECTURE_SCRIPT[1:4])  # repeats, so the penalty has work to do
    engine = FakeEngine(script=script)
    events = _tokens(_reply(engine, params))
    assert len(events) == len(script)
    for event, entry in zip(events, script, strict=True):
        logits, _ids = engine.logits(_as_scripted(entry, event.index))
        history = [e.token_id for e in events[: event.index]][-params.repeat_last_n :]
        ref = reference(
            logits.astype(float).tolist(),
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=params.min_p,
            temperature=params.temperature,
            greedy=params.is_greedy,
            penalized=frozenset(history) if params.repeat_penalty != 1.0 else frozenset(),
            repeat_penalty=params.repeat_penalty,
        )
        # p_final: llama.cpp's own chain is exact; the plain reference sums top-p's mass in float64
        # (llama.cpp in float32), so over the thousands of equally likely tail tokens its cut may
        # fall a few tokens apart, which moves the survivors' probabilities by up to ~1e-3.
        exact = _llama_cpp_final(params, logits, [e.token_id for e in events[: event.index]])
        assert [c.token_id for c in event.candidates] == ref.order[: len(event.candidates)]
        for cand in event.candidates:
            assert cand.p_raw == pytest.approx(ref.p_raw[cand.token_id], rel=1e-5)
            assert cand.p_final == pytest.approx(exact.get(cand.token_id, 0.0), abs=1e-6)
            assert cand.p_final == pytest.approx(ref.p_final[cand.token_id], abs=1e-3)
            assert (cand.cut_by.value if cand.cut_by else None) == ref.cut_by[cand.token_id]
        assert event.entropy == pytest.approx(ref.entropy_bits, abs=1e-4)
        assert ref.cut_by[event.token_id] is None
        assert event.p_final == pytest.approx(exact[event.token_id], abs=1e-6)
        assert event.p_raw == pytest.approx(ref.p_raw[event.token_id], rel=1e-5)


def test_top_p_is_renormalised_after_top_k() -> None:
    """The lecture step with top-k 4, top-p 0.9: over the top-4 mass, cake+donut reach 0.896, banana
    takes it past 0.9, so bread is cut by top-p (the old fake kept it)."""
    events = _tokens(_reply(BranchingFake(script=LECTURE_SCRIPT), PARAMS[0]))
    cake = events[5]
    assert cake.text == CAKE.text
    cuts = {c.text: c.cut_by.value if c.cut_by else None for c in cake.candidates}
    assert cuts == {
        " cake": None,
        " donut": None,
        " banana": None,
        " bread": "top_p",
        " pie": "top_k",
        " [bold]x[/]": "top_k",
    }


def test_a_token_the_samplers_cut_is_never_drawn() -> None:
    """Greedy takes the arg-max even where the script names a less likely token."""
    script = (ScriptedToken(" maybe", 0.2, ((" surely", 0.7),)),)
    events = _tokens(_reply(FakeEngine(script=script), PARAMS[3]))
    assert [e.text for e in events] == [" surely"]
    assert events[0].p_final == 1.0


def test_context_full_where_the_engine_stops() -> None:
    """The engine evaluates every token but the last drawn one and stops when the context holds n_ctx:
    prompt + reply = n_ctx + 1."""
    engine = FakeEngine(end=StopKind.MAX_TOKENS, n_ctx=64)
    done = _done(_reply(engine, SamplingParams(max_new_tokens=1000)))
    assert done.stop.kind is StopKind.CONTEXT_FULL and done.stop.limit == 64
    assert done.prompt_tokens + done.generated == 64 + 1
    assert len(engine.cache) == 64


def test_too_long_a_prompt_is_an_error_before_any_token() -> None:
    engine = FakeEngine(n_ctx=8)
    events = _reply(engine, SamplingParams())
    assert len(events) == 1
    done = _done(events)
    assert done.stop.kind is StopKind.ERROR and "too long for the context" in (done.stop.message or "")


def test_continue_from_counts_the_fixed_tokens_and_reuses_the_cache() -> None:
    """The fixed tokens are not re-emitted; indexes, max_new_tokens and the final text count them;
    only what follows the cached prefix is evaluated; the script goes on at their position."""
    engine = FakeEngine()
    first = _reply(engine, SamplingParams(seed=1))
    first_tokens = _tokens(first)
    fixed = [e.token_id for e in first_tokens[:4]]
    again = _reply(engine, SamplingParams(seed=1, max_new_tokens=6), continue_from=fixed)
    tokens = _tokens(again)
    done = _done(again)
    assert [e.index for e in tokens] == [4, 5]
    assert [e.text for e in tokens] == [e.text for e in first_tokens[4:6]]
    assert done.token_ids[:4] == tuple(fixed) and done.generated == 6
    assert done.stop.kind is StopKind.MAX_TOKENS
    assert done.text == "".join(e.text for e in first_tokens[:6])
    assert done.prompt_evaluated == 1  # prompt + 4 fixed were cached; the last one is re-evaluated
    assert engine.continued[-1] == tuple(fixed)


def test_branching_mode_plays_the_branch_script_after_the_fixed_tokens() -> None:
    engine = BranchingFake(script=LECTURE_SCRIPT)
    first = _tokens(_reply(engine, PARAMS[0]))
    donut = next(c for c in first[5].candidates if c.text == " donut")
    fixed = [e.token_id for e in first[:5]] + [donut.token_id]
    branch = _reply(engine, PARAMS[0], continue_from=fixed)
    assert [e.text for e in _tokens(branch)] == [" with", " cream", "."]
    done = _done(branch)
    assert done.text == "I had a slice of donut with cream."
    assert done.stop.kind is StopKind.EOS and done.stop.token_id == EOS_ID
    assert done.prompt_evaluated == 1


def test_the_same_text_is_the_same_token() -> None:
    engine = FakeEngine(script=DEFAULT_SCRIPT * 2, end=StopKind.EOS)
    events = _tokens(_reply(engine, SamplingParams(repeat_penalty=1.0)))
    ids = [e.token_id for e in events]
    assert ids[: len(DEFAULT_SCRIPT)] == ids[len(DEFAULT_SCRIPT) :]
    assert all(math.isfinite(e.entropy) for e in events)


@dataclass(frozen=True)
class FakeVocabulary:
    """What llama.cpp's reference chain needs to know of the fake model (no llama.cpp vocabulary:
    the samplers checked here do not read token texts)."""

    _n_vocab: int = FAKE_VOCAB
    _vocab: Any = None
    n_ctx: int = 2048


CHAIN_PARAMS = {
    # temperature first: min-p and top-p then see the flattened distribution; penalties last
    "reordered": SamplingParams(
        temperature=1.6,
        top_k=0,
        top_p=0.85,
        min_p=0.12,
        repeat_penalty=1.4,
        repeat_last_n=16,
        samplers=(SamplerName.TEMPERATURE, SamplerName.MIN_P, SamplerName.TOP_P, SamplerName.PENALTIES),
    ),
    # (top-n-sigma not before typical-p here: a one-shot llama.cpp chain leaves its -inf logits in
    # the array, where typical-p computes NaN; the engine's staged chain drops them first)
    "typical-xtc": SamplingParams(
        temperature=0.9,
        top_k=0,
        top_p=1.0,
        min_p=0.0,
        repeat_penalty=1.0,
        frequency_penalty=0.6,
        presence_penalty=0.3,
        typical_p=0.5,
        xtc_probability=1.0,
        xtc_threshold=0.04,
    ),
    "top-n-sigma": SamplingParams(temperature=0.7, top_k=0, top_p=0.9, min_p=0.0, top_n_sigma=1.0),
    "bias-reordered-top-k": SamplingParams(
        temperature=0.8,
        top_k=3,
        top_p=0.95,
        min_p=0.0,
        repeat_penalty=1.2,
        samplers=(SamplerName.TOP_P, SamplerName.PENALTIES, SamplerName.TEMPERATURE, SamplerName.TOP_K),
    ),
    "greedy-penalties": SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.8, repeat_last_n=8),
}


def _llama_cpp_final(params: SamplingParams, logits: np.ndarray, history: list[int]) -> dict[int, float]:
    """Token -> final probability for every token llama.cpp's chain keeps after ``history``; greedy:
    its penalties then the arg-max (the one token kept, at 1)."""
    if not params.is_greedy:
        return reference_survivors(FakeVocabulary(), params, logits, history)[0]
    penalties_only = params.model_copy(
        update={"mode": SamplingMode.SAMPLE, "temperature": 1.0, "samplers": (SamplerName.PENALTIES,)}
    )
    after = reference_survivors(FakeVocabulary(), penalties_only, logits, history)[0]
    return {max(after, key=lambda t: (after[t], -t)): 1.0}


@pytest.mark.parametrize("name", list(CHAIN_PARAMS))
def test_reordered_and_other_samplers_follow_llama_cpps_chain(name: str) -> None:
    """Every step of the fake's reply against llama.cpp's own chain on its logits, with the reply so
    far accepted: the same survivors and final probabilities (1e-6), a drawn token llama.cpp keeps,
    and the stages of the engine's chain (chain_specs) in order, each keeping no more than before."""
    params = CHAIN_PARAMS[name]
    script = (*LECTURE_SCRIPT, *LECTURE_SCRIPT[1:5], *LECTURE_SCRIPT[1:5])  # repeats for the penalties
    engine = BranchingFake(script=script)
    if name.startswith("bias"):  # ban the cake, boost the donut
        bias = {engine.token_id(" cake"): -math.inf, engine.token_id(" donut"): 2.0}
        params = params.model_copy(update={"logit_bias": bias})
    events = _tokens(_reply(engine, params))
    assert len(events) == len(script)
    stage_names = [spec.name for spec in chain_specs(params, seed=0, n_ctx=2048) if spec.name != "dist"]
    cuts_seen: set[CutBy] = set()
    for event, entry in zip(events, script, strict=True):
        logits, _ids = engine.logits(_as_scripted(entry, event.index))
        kept = _llama_cpp_final(params, logits, [e.token_id for e in events[: event.index]])
        assert event.token_id in kept
        assert event.p_final == pytest.approx(kept[event.token_id], abs=1e-6)
        for cand in event.candidates:
            assert (cand.cut_by is None) == (cand.token_id in kept), (event.index, cand)
            assert cand.p_final == pytest.approx(kept.get(cand.token_id, 0.0), abs=1e-6)
            if cand.cut_by is not None:
                cuts_seen.add(cand.cut_by)
        assert [stage for stage, _ in event.stages] == stage_names
        counts = [count for _, count in event.stages]
        assert counts == sorted(counts, reverse=True) and counts[-1] == len(kept)
    expected = {
        "reordered": {CutBy.MIN_P, CutBy.TOP_P},
        "typical-xtc": {CutBy.TYPICAL, CutBy.XTC},
        "top-n-sigma": {CutBy.TOP_N_SIGMA},
        "bias-reordered-top-k": {CutBy.BANNED, CutBy.TOP_P, CutBy.TOP_K},
        "greedy-penalties": {CutBy.GREEDY},
    }[name]
    assert expected <= cuts_seen, cuts_seen


def test_the_banned_token_is_never_drawn_and_the_boost_changes_the_pick() -> None:
    """Greedy with a logit bias: the cake (the script's pick, the arg-max) is banned, the boosted
    donut is drawn at p 1, as llama.cpp's logit bias then greedy would."""
    engine = BranchingFake(script=LECTURE_SCRIPT)
    cake, donut = engine.token_id(" cake"), engine.token_id(" donut")
    params = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0, logit_bias={cake: -math.inf})
    step = _tokens(_reply(engine, params))[5]
    assert step.token_id == donut and step.p_final == 1.0
    assert {c.token_id: c.cut_by for c in step.candidates}[cake] is CutBy.BANNED
    assert step.stages == (("logit_bias", FAKE_VOCAB - 1), ("greedy", 1))


def test_samplers_the_maths_cannot_compute_are_refused() -> None:
    """DRY and mirostat need llama.cpp's own sampler: the fake says so instead of guessing."""
    for params in (SamplingParams(dry_multiplier=0.8), SamplingParams(mirostat=2)):
        with pytest.raises(UnsupportedSampler):
            _reply(FakeEngine(), params)


def test_an_xtc_below_certainty_fires_on_some_tokens_only() -> None:
    """XTC at probability 0.5 fires where the fake's seeded draw says so: some steps cut the top
    choices, others keep them (deterministic for a seed)."""
    params = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
                            xtc_probability=0.5, xtc_threshold=0.04, seed=3)  # fmt: skip
    script = LECTURE_SCRIPT * 3
    runs = [_tokens(_reply(FakeEngine(script=script), params)) for _ in range(2)]
    fired = [any(c.cut_by is CutBy.XTC for c in e.candidates) for e in runs[0]]
    assert any(fired) and not all(fired)
    assert fired == [any(c.cut_by is CutBy.XTC for c in e.candidates) for e in runs[1]]
    assert np.isfinite([e.p_final for e in runs[0]]).all()
