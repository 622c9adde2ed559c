"""Section 3 row: the per-token cost of a long sampler chain (every sampler on) against the default.

Both are measured the same way, side by side in one run: the engine's real token loop with
``llama_decode`` taken out (see :mod:`tests.bench.overhead`), top-10 candidate capture on, so the
figure is what the chain, its stage-by-stage instrumentation and the candidates cost per token.
"""

from __future__ import annotations

import math
from typing import Any

from settings.sampling import SamplingParams
from tests.bench.common import SAMPLING
from tests.bench.overhead import loop_us_per_token
from tests.bench.report import Row

LONG_CHAIN = SAMPLING.model_copy(
    update={
        "frequency_penalty": 0.2,
        "presence_penalty": 0.1,
        "dry_multiplier": 0.8,
        "top_n_sigma": 3.0,
        "typical_p": 0.95,
        "xtc_probability": 0.5,
        "xtc_threshold": 0.1,
        "dynatemp_range": 0.3,
        "logit_bias": {13: 1.0, 198: -math.inf},
    }
)
"""Every sampler of the ordered chain on, plus a logit bias with a ban (no grammar)."""


def chain_rows(engine: Any, top_n: int = 10) -> list[Row]:
    """One row: per-token loop time with every sampler on, against the default chain."""
    long_chain = SamplingParams.model_validate(LONG_CHAIN.model_dump())
    real_decode = engine._decode_one
    saved_top_n = engine.top_n
    engine._decode_one = lambda token: None
    try:
        default_us = loop_us_per_token(engine, SAMPLING, top_n)
        long_us = loop_us_per_token(engine, long_chain, top_n)
        default_us = min(default_us, loop_us_per_token(engine, SAMPLING, top_n))
    finally:
        engine._decode_one = real_decode
        engine.top_n = saved_top_n
    return [
        Row(
            "3",
            f"sampler chain per token, every sampler on (top-{top_n})",
            f"{long_us:.0f} us",
            f"default chain: {default_us:.0f} us",
            f"{long_us / default_us:.1f}x",
            "",
            None,
            "loop without llama_decode; the long chain runs on the whole vocabulary (a ban and DRY "
            "come before top-k), the default on a top-k pool",
        )
    ]
