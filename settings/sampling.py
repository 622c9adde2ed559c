"""Sampling parameters: one frozen, validated value object per parameter set.

A change is a new object (``params.model_copy(update=...)`` re-validated through
:func:`replace_params`), never a mutation, so a reader that took a reference keeps a
consistent set.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SamplingMode(StrEnum):
    """How the next token is chosen."""

    GREEDY = "greedy"
    """Always take the most likely token (arg-max); deterministic, tends to repeat."""
    SAMPLE = "sample"
    """Draw from the distribution left after penalties, top-k, top-p, min-p and temperature."""


TEMPERATURE_MAX = 5.0
TOP_K_MAX = 1000
MAX_NEW_TOKENS_MAX = 1_000_000
SEED_MAX = 2**32 - 2  # 2**32 - 1 is llama.cpp's "random seed" sentinel
REPEAT_PENALTY_MAX = 5.0


class SamplingParams(BaseModel):
    """One complete, valid set of sampling parameters (frozen)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    mode: SamplingMode = SamplingMode.SAMPLE
    """greedy (arg-max) or sample (random draw from the filtered distribution)."""
    temperature: float = Field(0.8, ge=0.0, le=TEMPERATURE_MAX)
    """Divides the logits before the softmax: < 1 sharpens, > 1 flattens, 1 leaves unchanged; 0 = greedy."""
    top_k: int = Field(40, ge=0, le=TOP_K_MAX)
    """Keep only the k most likely tokens (0 = off)."""
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    """Keep the smallest set of tokens whose probabilities add up to p (1 = off)."""
    min_p: float = Field(0.05, ge=0.0, le=1.0)
    """Drop tokens less likely than min_p times the most likely one (0 = off)."""
    repeat_penalty: float = Field(1.1, gt=0.0, le=REPEAT_PENALTY_MAX)
    """Divides the logits of recently seen tokens (> 1 discourages repeats, 1 = off)."""
    repeat_last_n: int = Field(64, ge=0, le=4096)
    """How many recent tokens the repeat penalty looks at (0 = off)."""
    max_new_tokens: int = Field(256, ge=1, le=MAX_NEW_TOKENS_MAX)
    """A cap on the reply's length in tokens, not a target: a reply may end earlier on end-of-sequence."""
    seed: int = Field(-1, ge=-1, le=SEED_MAX)
    """Random seed for sampling; -1 picks a fresh one per reply (the seed used is recorded)."""
    stop: tuple[str, ...] = ()
    """Stop strings: the reply ends when one of them appears (it is not shown)."""

    @field_validator("stop", mode="before")
    @classmethod
    def _split_stop(cls, value: Any) -> Any:
        """Accept a single string (comma-free) as one stop string."""
        if isinstance(value, str):
            return (value,) if value else ()
        return value

    @field_validator("stop")
    @classmethod
    def _no_empty_stop(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not s for s in value):
            raise ValueError("stop strings must not be empty")
        return value

    @property
    def is_greedy(self) -> bool:
        """True when the next token is the arg-max (greedy mode, or temperature 0)."""
        return self.mode is SamplingMode.GREEDY or self.temperature == 0.0


def replace_params(params: SamplingParams, **changes: Any) -> SamplingParams:
    """Return a new validated SamplingParams with ``changes`` applied (raises ValidationError)."""
    return SamplingParams.model_validate({**params.model_dump(), **changes})


DEFAULT_PRESETS: dict[str, SamplingParams] = {
    "greedy": SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0),
    "precise": SamplingParams(temperature=0.3, top_k=20, top_p=0.8, min_p=0.1, repeat_penalty=1.1),
    "balanced": SamplingParams(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1),
    "creative": SamplingParams(temperature=1.2, top_k=100, top_p=0.98, min_p=0.02, repeat_penalty=1.05),
}
"""Presets offered in the panel; settings may add or override entries."""
