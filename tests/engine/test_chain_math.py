"""The numpy port of llama.cpp's deterministic samplers against llama.cpp's own chain (1e-6)."""

from __future__ import annotations

import numpy as np
import pytest

from settings.sampling import SamplingParams
from tests.engine.test_chain_exact import (
    CHAINS,
    HISTORY_TEXT,
    ONLY,
    SAMPLE,
    TOL,
    prompt_logits,
    reference_survivors,
)
from tui.engine.chain_math import UnsupportedSampler, chain_result, is_supported
from tui.engine.events import CutBy
from tui.engine.llama_engine import LlamaEngine

pytestmark = pytest.mark.real_model

ONE_AT_A_TIME = {
    f"only_{name}": SamplingParams.model_validate({**SAMPLE.model_dump(), **update})
    for name, update in ONLY.items()
    if name != "xtc_maybe"
}
CASES = {**ONE_AT_A_TIME, **CHAINS}


@pytest.fixture(scope="module")
def logits(engine: LlamaEngine) -> np.ndarray:
    """The real model's logits at the end of a prompt."""
    return prompt_logits(engine)


@pytest.fixture(scope="module")
def history(engine: LlamaEngine) -> list[int]:
    """A reply so far with repeats in it."""
    return engine.tokenize(HISTORY_TEXT)


SUPPORTED = [name for name, params in CASES.items() if is_supported(params)]


@pytest.mark.parametrize("name", SUPPORTED)
def test_numpy_chain_equals_llama_cpp(
    engine: LlamaEngine, logits: np.ndarray, history: list[int], name: str
) -> None:
    params = CASES[name]
    ref, _ = reference_survivors(engine, params, logits, history)
    ours = chain_result(logits, params, history)
    kept = {int(t): float(ours.p_final[t]) for t in np.flatnonzero(ours.p_final > 0)}
    assert set(kept) == set(ref), set(kept) ^ set(ref)
    for token, p in ref.items():
        assert abs(kept[token] - p) <= TOL
    assert all(ours.cut_at(t) is not None for t in range(logits.shape[0]) if t not in ref)


def test_unsupported_samplers_are_refused(logits: np.ndarray) -> None:
    assert SUPPORTED and len(SUPPORTED) >= 14
    for params in (SamplingParams(dry_multiplier=0.5), SamplingParams(grammar='root ::= "a"'),
                   SamplingParams(mirostat=2)):  # fmt: skip
        assert not is_supported(params)
        with pytest.raises(UnsupportedSampler):
            chain_result(logits, params)


def test_cut_reasons_in_the_numpy_chain(logits: np.ndarray, history: list[int]) -> None:
    result = chain_result(logits, CASES["only_top_k"], history)
    assert CutBy.TOP_K in result.cut_by.values()
    assert dict(result.survivors)["top_k"] == 25
