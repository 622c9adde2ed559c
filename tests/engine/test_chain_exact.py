"""Every sampler, and chains of several: the engine's staged chain against llama.cpp's own chain.

The reference is built here, independently of ``tui.engine.chain``: one ``llama_sampler_chain``
made with llama-cpp-python's low-level bindings in llama.cpp's ``common_sampler`` order, applied
once to a ``llama_token_data_array`` holding the real default model's logits. The engine's run
(stage by stage, watching every token of the vocabulary) must keep exactly the same tokens with
the same final probabilities (1e-6).
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import pytest

from settings.sampling import Mirostat, SamplerName, SamplingMode, SamplingParams
from tests.engine.engine_helpers import GREEDY, run_reply, user
from tui.engine.chain import (
    GrammarDeadEnd,
    GrammarError,
    SamplerChain,
    chain_specs,
    grammar_text,
)
from tui.engine.events import CutBy
from tui.engine.llama_engine import LlamaEngine

pytestmark = pytest.mark.real_model

TOL = 1e-6
SEED = 1234
HISTORY_TEXT = " the cat sat on the mat. the cat sat on the mat. the cat sat on the"


def prompt_logits(engine: LlamaEngine) -> np.ndarray:
    """The real model's logits at the end of a prompt (a copy: the view changes on decode)."""
    run_reply(engine, user("Tell me a story about a cat."), GREEDY.model_copy(update={"max_new_tokens": 1}))
    result: np.ndarray = engine._logits().copy()
    return result


@pytest.fixture(scope="module")
def logits(engine: LlamaEngine) -> np.ndarray:
    """See :func:`prompt_logits`."""
    return prompt_logits(engine)


@pytest.fixture(scope="module")
def history(engine: LlamaEngine) -> list[int]:
    """A reply so far with repeats in it (for penalties and DRY)."""
    return engine.tokenize(HISTORY_TEXT)


class ChainHost(Protocol):
    """What the reference chain needs of an engine: the vocabulary (DRY, grammars) and its sizes
    (a LlamaEngine; the fake engine's tests pass its vocabulary size and no llama.cpp vocabulary)."""

    @property
    def _n_vocab(self) -> int: ...

    @property
    def _vocab(self) -> Any: ...

    @property
    def n_ctx(self) -> int: ...


def reference_chain(engine: ChainHost, params: SamplingParams, history: Sequence[int]) -> Any:
    """llama.cpp's chain for ``params``, built straight from the bindings (common_sampler's order)."""
    import llama_cpp as lib

    chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
    n_vocab = engine._n_vocab
    vocab = engine._vocab

    def add(sampler: Any) -> None:
        lib.llama_sampler_chain_add(chain, sampler)

    if params.logit_bias:
        entries = (lib.llama_logit_bias * len(params.logit_bias))()
        for i, (token, bias) in enumerate(params.logit_bias.items()):
            entries[i] = lib.llama_logit_bias(token, bias)
        add(lib.llama_sampler_init_logit_bias(n_vocab, len(params.logit_bias), entries))
    gbnf = grammar_text(params)
    if gbnf:
        add(lib.llama_sampler_init_grammar(vocab, gbnf.encode(), b"root"))
    if params.mirostat is Mirostat.OFF:
        for name in params.samplers:
            if name is SamplerName.PENALTIES:
                add(lib.llama_sampler_init_penalties(
                    n_vocab, params.repeat_last_n, params.repeat_penalty,
                    params.frequency_penalty, params.presence_penalty,
                ))  # fmt: skip
            elif name is SamplerName.DRY:
                breakers = [b.encode() for b in params.dry_sequence_breakers]
                array = (ctypes.c_char_p * len(breakers))(*breakers)
                last_n = engine.n_ctx if params.dry_last_n == -1 else params.dry_last_n
                add(lib.llama_sampler_init_dry(
                    vocab, params.dry_multiplier, params.dry_base, params.dry_allowed_length,
                    last_n, array, len(breakers),
                ))  # fmt: skip
            elif name is SamplerName.TOP_N_SIGMA:
                add(lib.llama_sampler_init_top_n_sigma(params.top_n_sigma))
            elif name is SamplerName.TOP_K:
                add(lib.llama_sampler_init_top_k(params.top_k))
            elif name is SamplerName.TYP_P:
                add(lib.llama_sampler_init_typical(params.typical_p, 1))
            elif name is SamplerName.TOP_P:
                add(lib.llama_sampler_init_top_p(params.top_p, 1))
            elif name is SamplerName.MIN_P:
                add(lib.llama_sampler_init_min_p(params.min_p, 1))
            elif name is SamplerName.XTC:
                add(lib.llama_sampler_init_xtc(params.xtc_probability, params.xtc_threshold, 1, SEED))
            elif name is SamplerName.TEMPERATURE:
                add(lib.llama_sampler_init_temp_ext(
                    params.temperature, params.dynatemp_range, params.dynatemp_exponent
                ))  # fmt: skip
        add(lib.llama_sampler_init_dist(SEED))
    else:
        add(lib.llama_sampler_init_temp(params.temperature))
        if params.mirostat is Mirostat.V1:
            add(lib.llama_sampler_init_mirostat(n_vocab, SEED, params.mirostat_tau, params.mirostat_eta, 100))
        else:
            add(lib.llama_sampler_init_mirostat_v2(SEED, params.mirostat_tau, params.mirostat_eta))
    for token in history:
        lib.llama_sampler_accept(chain, token)
    return chain


def reference_survivors(engine: ChainHost, params: SamplingParams, logits: np.ndarray,
                        history: Sequence[int]) -> tuple[dict[int, float], int]:  # fmt: skip
    """(token -> final p for every token the chain keeps, the token it picked)."""
    import llama_cpp as lib

    chain = reference_chain(engine, params, history)
    try:
        data = (lib.llama_token_data * logits.shape[0])()
        view = np.ctypeslib.as_array(data)
        view["id"] = np.arange(logits.shape[0])
        view["logit"] = logits
        array = lib.llama_token_data_array(data, logits.shape[0], -1, False)
        lib.llama_sampler_apply(chain, ctypes.byref(array))
        address = ctypes.cast(array.data, ctypes.c_void_p).value or 0
        start = (address - ctypes.addressof(data)) // view.itemsize
        out = view[start : start + array.size]
        assert np.all(np.isfinite(out["p"])), "llama.cpp's own chain is ill-defined for these params"
        kept = {int(t): float(p) for t, p in zip(out["id"], out["p"], strict=True) if p > 0.0}
        return kept, int(out["id"][array.selected])
    finally:
        lib.llama_sampler_free(chain)


EngineRun = tuple[dict[int, float], dict[int, CutBy | None], int, Any]


def engine_run(
    engine: LlamaEngine,
    params: SamplingParams,
    logits: np.ndarray,
    history: Sequence[int],
    *,
    pool: np.ndarray | None = None,
) -> EngineRun:
    """The engine's staged chain watching every token: (kept -> p, token -> cut_by, picked, step)."""
    import llama_cpp as lib

    chain = SamplerChain(lib, engine._vocab, engine._n_vocab, engine.n_ctx)
    try:
        chain.update(chain_specs(params, seed=SEED, n_ctx=engine.n_ctx), history)
        watched = np.arange(logits.shape[0], dtype=np.intp)
        step = chain.run(logits, pool, watched)
    finally:
        chain.close()
    kept = {
        i: p for i, (p, c) in enumerate(zip(step.p_final, step.cut_by, strict=True)) if c is None and p > 0
    }
    cuts = dict(enumerate(step.cut_by))
    return kept, cuts, step.token, step


def assert_same(engine: LlamaEngine, params: SamplingParams, logits: np.ndarray,
                history: Sequence[int] = ()) -> tuple[dict[int, float], dict[int, CutBy | None]]:  # fmt: skip
    """The engine keeps exactly llama.cpp's survivors, with its probabilities and its pick."""
    ref, ref_pick = reference_survivors(engine, params, logits, history)
    ours, cuts, pick, _ = engine_run(engine, params, logits, history)
    assert set(ours) == set(ref), (
        f"survivors differ: only ours {set(ours) - set(ref)}, only llama.cpp {set(ref) - set(ours)}"
    )
    for token, p in ref.items():
        assert abs(ours[token] - p) <= TOL, (token, ours[token], p)
    assert pick == ref_pick
    assert 1 <= len(ref) < logits.shape[0] or params == SamplingParams(top_k=0, top_p=1.0, min_p=0.0)
    return ours, cuts


SAMPLE = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0)
ONLY: dict[str, dict[str, Any]] = {  # one sampler on at a time (the rest off)
    "top_k": {"top_k": 25},
    "top_p": {"top_p": 0.7},
    "min_p": {"min_p": 0.08},
    "typ_p": {"typical_p": 0.5, "top_k": 200},
    "top_n_sigma": {"top_n_sigma": 1.5},
    "xtc": {"xtc_probability": 1.0, "xtc_threshold": 0.05, "top_k": 50},
    "xtc_maybe": {"xtc_probability": 0.5, "xtc_threshold": 0.02, "top_k": 50},
    "temperature": {"temperature": 0.6, "top_k": 100},
    "dynatemp": {"temperature": 0.9, "dynatemp_range": 0.5, "dynatemp_exponent": 1.5, "top_k": 60},
    "penalties": {"repeat_penalty": 1.3, "repeat_last_n": 64, "top_k": 30},
    "frequency_presence": {
        "frequency_penalty": 0.7,
        "presence_penalty": 0.4,
        "repeat_last_n": 64,
        "top_k": 30,
    },
    "dry": {"dry_multiplier": 0.8, "dry_base": 1.75, "dry_allowed_length": 2, "top_k": 30},
    "logit_bias": {"logit_bias": {13: 5.0, 198: -math.inf, 30: -3.0}, "top_k": 30},
    "mirostat_v1": {"mirostat": Mirostat.V1, "mirostat_tau": 4.0, "mirostat_eta": 0.2},
    "mirostat_v2": {"mirostat": Mirostat.V2, "mirostat_tau": 3.0, "mirostat_eta": 0.1},
}


@pytest.mark.parametrize("name", list(ONLY))
def test_each_sampler_equals_llama_cpp(
    engine: LlamaEngine, logits: np.ndarray, history: list[int], name: str
) -> None:
    params = SAMPLE.model_copy(update=ONLY[name])
    params = SamplingParams.model_validate(params.model_dump())
    _, cuts = assert_same(engine, params, logits, history)
    if name == "logit_bias":
        assert cuts[198] is CutBy.BANNED
    elif name in ("top_k", "top_p", "min_p", "top_n_sigma", "typ_p"):
        expected = {"top_k": CutBy.TOP_K, "top_p": CutBy.TOP_P, "min_p": CutBy.MIN_P,
                    "top_n_sigma": CutBy.TOP_N_SIGMA, "typ_p": CutBy.TYPICAL}[name]  # fmt: skip
        assert expected in cuts.values()
    elif name == "xtc":
        assert CutBy.XTC in cuts.values()  # it fired (probability 1) and removed the top choices
    elif name.startswith("mirostat"):
        assert CutBy.MIROSTAT in cuts.values()


CHAINS = {
    "default": SamplingParams(),
    "all_on_default_order": SamplingParams(
        temperature=0.9,
        top_k=40,
        top_p=0.95,
        min_p=0.02,
        repeat_penalty=1.1,
        frequency_penalty=0.2,
        presence_penalty=0.1,
        typical_p=0.9,
        top_n_sigma=3.0,
        xtc_probability=1.0,
        xtc_threshold=0.1,
        dry_multiplier=0.8,
        dynatemp_range=0.3,
        logit_bias={13: 2.0},
    ),
    "reordered": SamplingParams(
        temperature=1.3,
        top_k=60,
        top_p=0.9,
        min_p=0.05,
        typical_p=0.95,
        samplers="temperature;min_p;top_p;penalties;top_k;typ_p",
    ),
    "subset": SamplingParams(temperature=0.7, top_k=10, top_p=0.5, samplers="top_p;temperature"),
    "grammar": SamplingParams(top_k=40, grammar='root ::= [ ]? ("Once" | "One" | "The") [a-z ]*'),
    "json_schema": SamplingParams(
        top_k=0, top_p=0.9, json_schema='{"type": "object", "properties": {"a": {"type": "integer"}}}'
    ),
}


@pytest.mark.parametrize("name", list(CHAINS))
def test_chains_equal_llama_cpp(
    engine: LlamaEngine, logits: np.ndarray, history: list[int], name: str
) -> None:
    params = CHAINS[name]
    # (a grammar must never be fed tokens it does not allow: llama.cpp aborts the process)
    assert_same(engine, params, logits, [] if params.has_constraint else history)


def test_grammar_cuts_are_named(engine: LlamaEngine, logits: np.ndarray) -> None:
    params = CHAINS["grammar"]
    ours, cuts = assert_same(engine, params, logits)
    assert all(engine.token_text(t).strip().startswith(("O", "T")) or not engine.token_text(t).strip()
               for t in ours)  # fmt: skip
    assert CutBy.GRAMMAR in cuts.values()


def test_the_pool_gives_the_same_numbers(engine: LlamaEngine, logits: np.ndarray, history: list[int]) -> None:
    from tui.engine.sampling_math import chain_pool

    params = CHAINS["default"]
    pool = chain_pool(logits, top_k=params.top_k, history=history, repeat_penalty=1.1, repeat_last_n=64)
    assert pool is not None
    full = engine_run(engine, params, logits, history)
    part = engine_run(engine, params, logits, history, pool=pool)
    assert full[0].keys() == part[0].keys()
    assert all(abs(full[0][t] - part[0][t]) <= TOL for t in full[0])
    assert full[3].survivors == part[3].survivors  # the counts say the whole vocabulary, too


def test_stage_survivors_are_reported_in_order(
    engine: LlamaEngine, logits: np.ndarray, history: list[int]
) -> None:
    params = CHAINS["all_on_default_order"]
    *_, step = engine_run(engine, params, logits, history)
    names = [name for name, _ in step.survivors]
    assert names == ["logit_bias", "penalties", "dry", "top_n_sigma", "top_k", "typ_p", "top_p", "min_p",
                     "xtc", "temperature"]  # fmt: skip
    counts = [n for _, n in step.survivors]
    assert counts == sorted(counts, reverse=True) and counts[-1] >= 1
    assert dict(step.survivors)["top_k"] <= 40


def test_greedy_takes_the_arg_max_of_what_penalties_and_bias_leave(
    engine: LlamaEngine, logits: np.ndarray, history: list[int]
) -> None:
    best = int(np.argmax(logits))
    params = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0, logit_bias={best: -math.inf})
    _, cuts, pick, _ = engine_run(engine, params, logits, history)
    assert pick == int(np.argsort(-logits, kind="stable")[1])
    assert cuts[best] is CutBy.BANNED and cuts[pick] is None
    penalised = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=5.0, presence_penalty=2.0)
    _, _, pick2, _ = engine_run(engine, penalised, logits, [best] * 3)
    assert pick2 != best  # the penalties apply in greedy mode too


def test_grammar_that_allows_nothing_is_a_dead_end(engine: LlamaEngine, logits: np.ndarray) -> None:
    x = engine.tokenize("x")
    assert len(x) == 1
    params = SamplingParams(grammar='root ::= "x"', logit_bias={x[0]: -math.inf})
    with pytest.raises(GrammarDeadEnd):
        engine_run(engine, params, logits, [])


@pytest.mark.parametrize(
    ("grammar", "expected"),
    [
        ('root ::= "a"\nb ::= ( "c" \n', "grammar error (line 2, column 12): expecting ')'"),
        ('root ::= "a" )\n', "grammar error (line 1, column 14): expecting newline or end"),
        ('root = "a"', "grammar error (line 1, column 6): expecting ::="),
        ('root ::= "a\\q"', "grammar error (line 1, column 12): unknown escape"),
        ("root ::= x\nx ::= y", "grammar error (line 2, column 7): Undefined rule identifier 'y'"),
        ("root ::= [a-\n", "grammar error (line 1, column 13): unexpected end of input"),
        ('foo ::= "a"', "grammar error: it has no 'root' rule"),
    ],
)
def test_grammar_errors_from_llama_cpp_name_line_and_column(
    engine: LlamaEngine, grammar: str, expected: str
) -> None:
    import llama_cpp as lib

    chain = SamplerChain(lib, engine._vocab, engine._n_vocab, engine.n_ctx)
    with pytest.raises(GrammarError) as caught:
        chain.update(chain_specs(SamplingParams(grammar=grammar), seed=1, n_ctx=engine.n_ctx), [])
    assert caught.value.message.startswith(expected), caught.value.message
    chain.close()


def test_bias_outside_the_vocabulary_is_a_clear_error(engine: LlamaEngine) -> None:
    params = SamplingParams(logit_bias={engine._n_vocab + 5: 1.0})
    _, tokens, done = run_reply(engine, user("Hi"), params)
    assert not tokens and done.stop.message is not None
    assert f"{engine._n_vocab} tokens" in done.stop.message


def test_seeded_reply_with_every_sampler_is_reproducible(engine: LlamaEngine) -> None:
    params = CHAINS["all_on_default_order"].model_copy(
        update={"seed": 99, "max_new_tokens": 24, "xtc_probability": 0.5}
    )
    params = SamplingParams.model_validate(params.model_dump())
    first = run_reply(engine, user("Write a line about the sea."), params)[2]
    second = run_reply(engine, user("Write a line about the sea."), params)[2]
    assert first.token_ids == second.token_ids and len(first.token_ids) > 5


def test_grammar_reply_follows_the_grammar(engine: LlamaEngine) -> None:
    params = SamplingParams(seed=5, grammar='root ::= ("yes" | "no") "."', max_new_tokens=20)
    _, _, done = run_reply(engine, user("Is the sky blue? Answer yes or no."), params)
    assert done.text in ("yes.", "no.")
    assert done.stop.kind.value == "eos"


def test_bad_json_schema_is_a_clear_error(engine: LlamaEngine) -> None:
    params = SamplingParams(json_schema='{"$ref": "https://example.invalid/schema.json"}')
    _, tokens, done = run_reply(engine, user("Hi"), params)
    assert not tokens and done.stop.message is not None and "JSON schema" in done.stop.message


def live_changes() -> Iterator[SamplingParams]:
    """A sequence of live parameter sets that each change a different stateful stage."""
    base = SamplingParams(seed=7, top_k=20, repeat_penalty=1.3, dry_multiplier=0.5, max_new_tokens=30)
    yield base
    yield base.model_copy(update={"temperature": 0.5})
    yield base.model_copy(update={"temperature": 0.5, "top_p": 0.8})


def test_a_live_change_keeps_the_penalty_and_dry_history(engine: LlamaEngine) -> None:
    """Changing an unrelated sampler mid-reply keeps the stateful stages: the same reply as when
    the stateful ones are rebuilt and replay the reply (a change to their own settings)."""
    import threading

    from tui.engine.live import LiveParams

    story = user("List the days of the week.")
    base = SamplingParams(temperature=1.0, top_k=1, repeat_penalty=3.0, dry_multiplier=1.0, max_new_tokens=30)
    _, _, plain = run_reply(engine, story, base)
    live = LiveParams(base)
    ids: list[int] = []
    for event in engine.stream_reply(story, live, threading.Event()):
        if hasattr(event, "token_id") and hasattr(event, "candidates"):
            ids.append(event.token_id)
            # alternate: an unrelated change (stages reused) and a penalty change back and forth
            # to the same value (penalties rebuilt and replayed)
            update = {"temperature": 0.9} if len(ids) % 2 else {"repeat_penalty": 3.0, "repeat_last_n": 65}
            live.set(base.model_copy(update=update))
    assert tuple(ids) == plain.token_ids
