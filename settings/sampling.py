"""Sampling parameters: one frozen, validated value object per parameter set.

A change is a new object (``params.model_copy(update=...)`` re-validated through
:func:`replace_params`), never a mutation, so a reader that took a reference keeps a
consistent set.
"""

from __future__ import annotations

import json
import math
from enum import IntEnum, StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator
from pydantic_settings import NoDecode


class SamplingMode(StrEnum):
    """How the next token is chosen."""

    GREEDY = "greedy"
    """Always take the most likely token (arg-max); deterministic, tends to repeat."""
    SAMPLE = "sample"
    """Draw from the distribution left after the sampler chain (see ``SamplingParams.samplers``)."""


class Mirostat(IntEnum):
    """Mirostat: a sampler that steers the reply's surprise (replaces the truncation chain)."""

    OFF = 0
    V1 = 1
    V2 = 2


class SamplerName(StrEnum):
    """The reorderable stages of llama.cpp's sampler chain (its ``--samplers`` names)."""

    PENALTIES = "penalties"
    """Repeat, frequency and presence penalties on recently generated tokens."""
    DRY = "dry"
    """DRY: penalises tokens that would extend a sequence already repeated in the reply."""
    TOP_N_SIGMA = "top_n_sigma"
    """Keep tokens whose logit is within n standard deviations of the highest."""
    TOP_K = "top_k"
    TYP_P = "typ_p"
    """Locally typical sampling (typical-p)."""
    TOP_P = "top_p"
    MIN_P = "min_p"
    XTC = "xtc"
    """Exclude top choices: sometimes removes every likely token but the least likely of them."""
    TEMPERATURE = "temperature"
    """Temperature, dynamic when ``dynatemp_range`` > 0."""


DEFAULT_SAMPLER_ORDER: tuple[SamplerName, ...] = tuple(SamplerName)
"""llama.cpp's default order: penalties;dry;top_n_sigma;top_k;typ_p;top_p;min_p;xtc;temperature."""


TEMPERATURE_MAX = 5.0
TOP_K_MAX = 1000
MAX_NEW_TOKENS_MAX = 1_000_000
SEED_MAX = 2**32 - 2  # 2**32 - 1 is llama.cpp's "random seed" sentinel
REPEAT_PENALTY_MAX = 5.0
BIAS_MAX = 100.0
"""The largest |bias| a logit-bias entry may have (a ban is -inf)."""
GRAMMAR_MAX_CHARS = 100_000


class SamplingParams(BaseModel):
    """One complete, valid set of sampling parameters (frozen)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: SamplingMode = Field(
        SamplingMode.SAMPLE,
        description="greedy (arg-max) or sample (random draw from the filtered distribution).",
    )
    temperature: float = Field(
        0.8, ge=0.0, le=TEMPERATURE_MAX,
        description="Divides the logits before the softmax: < 1 sharpens, > 1 flattens, 1 leaves unchanged; "
        "0 = greedy.",
    )
    top_k: int = Field(40, ge=0, le=TOP_K_MAX, description="Keep only the k most likely tokens (0 = off).")
    top_p: float = Field(
        0.95, gt=0.0, le=1.0,
        description="Keep the smallest set of tokens whose probabilities add up to p (1 = off).",
    )
    min_p: float = Field(
        0.05, ge=0.0, le=1.0,
        description="Drop tokens less likely than min_p times the most likely one (0 = off).",
    )
    repeat_penalty: float = Field(
        1.1, gt=0.0, le=REPEAT_PENALTY_MAX,
        description="Divides the logits of recently seen tokens (> 1 discourages repeats, 1 = off).",
    )
    repeat_last_n: int = Field(
        64, ge=0, le=4096, description="How many recent tokens the repeat penalty looks at (0 = off)."
    )
    max_new_tokens: int = Field(
        256, ge=1, le=MAX_NEW_TOKENS_MAX,
        description="A cap on the reply's length in tokens, not a target: a reply may end earlier on "
        "end-of-sequence.",
    )
    seed: int = Field(
        -1, ge=-1, le=SEED_MAX,
        description="Random seed for sampling; -1 picks a fresh one per reply (the seed used is recorded).",
    )
    stop: tuple[str, ...] = Field(
        (), description="Stop strings: the reply ends when one of them appears (it is not shown)."
    )
    presence_penalty: float = Field(
        0.0, ge=-2.0, le=2.0,
        description="Subtracted once from the logit of every token seen in the last repeat_last_n (0 = "
        "off).",
    )
    frequency_penalty: float = Field(
        0.0, ge=-2.0, le=2.0,
        description="Subtracted from a recent token's logit once per time it was seen (0 = off).",
    )
    typical_p: float = Field(
        1.0, gt=0.0, le=1.0,
        description="Locally typical: keep the tokens whose surprise is closest to the average, up to mass "
        "p (1 = off).",
    )
    top_n_sigma: float = Field(
        0.0, ge=0.0, le=10.0,
        description="Keep tokens whose logit is within n standard deviations of the highest logit (0 = "
        "off).",
    )
    xtc_probability: float = Field(
        0.0, ge=0.0, le=1.0,
        description="XTC: the chance, per token, that the top choices are excluded (0 = off).",
    )
    xtc_threshold: float = Field(
        0.1, ge=0.0, le=0.5,
        description="XTC: tokens at least this likely count as top choices; all but the least likely are "
        "removed.",
    )
    dry_multiplier: float = Field(
        0.0, ge=0.0, le=5.0,
        description="DRY: strength of the penalty on tokens that would extend a repeated sequence (0 = "
        "off).",
    )
    dry_base: float = Field(
        1.75, ge=1.0, le=4.0,
        description="DRY: the penalty grows as base ** (repeat length - allowed length).",
    )
    dry_allowed_length: int = Field(
        2, ge=1, le=100, description="DRY: repeats up to this many tokens long are not penalised."
    )
    dry_last_n: int = Field(
        -1, ge=-1, le=32768,
        description="DRY: how many recent tokens to scan for repeats (-1 = the whole context, 0 = off).",
    )
    dry_sequence_breakers: Annotated[tuple[str, ...], NoDecode] = Field(
        ("\n", ":", '"', "*"),
        description="DRY: strings that end a repeated sequence (a repeat never spans them); in a flag or "
        'the environment a JSON list (`\'["\\n", ":", ","]\'`), or one breaker as it is.',
    )
    mirostat: Mirostat = Field(
        Mirostat.OFF,
        description="Mirostat 1 or 2 targets a surprise level and replaces the truncation samplers (0 = "
        "off).",
    )
    mirostat_tau: float = Field(
        5.0, gt=0.0, le=20.0,
        description="Mirostat: the target surprise, in bits per token (lower = more focused).",
    )
    mirostat_eta: float = Field(0.1, gt=0.0, le=1.0, description="Mirostat: how fast it adapts to reach tau.")
    dynatemp_range: float = Field(
        0.0, ge=0.0, le=TEMPERATURE_MAX,
        description="Dynamic temperature: the temperature moves within temperature ± range with the entropy "
        "(0 = off).",
    )
    dynatemp_exponent: float = Field(
        1.0, ge=0.0, le=10.0,
        description="Dynamic temperature: the exponent mapping the normalised entropy to the temperature.",
    )
    logit_bias: dict[int, float] = Field(
        default_factory=dict,
        description="Token id -> added to its logit before the chain; -inf bans the token.",
    )
    grammar: str = Field(
        "", max_length=GRAMMAR_MAX_CHARS, description="A GBNF grammar the reply must follow (empty = none)."
    )
    json_schema: str = Field(
        "", max_length=GRAMMAR_MAX_CHARS,
        description="A JSON schema the reply must follow, turned into a GBNF grammar (empty = none).",
    )
    samplers: tuple[SamplerName, ...] = Field(
        DEFAULT_SAMPLER_ORDER,
        description="The chain's order, first to last (llama.cpp's names, ';'-separated in text); left out "
        "= not used.",
    )

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

    @field_validator("dry_sequence_breakers", mode="before")
    @classmethod
    def _breakers_from_text(cls, value: Any) -> Any:
        """Text (a flag, the environment, a TOML string): see :func:`breakers_from_text`."""
        if isinstance(value, str):
            return breakers_from_text(value)
        return value

    @field_validator("dry_sequence_breakers")
    @classmethod
    def _no_empty_breaker(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not s for s in value):
            raise ValueError("sequence breakers must not be empty")
        return value

    @field_validator("samplers", mode="before")
    @classmethod
    def _split_samplers(cls, value: Any) -> Any:
        """Accept llama.cpp's text form, ``"penalties;top_k;temperature"`` (';' or ',' separated)."""
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            parts = (p.strip() for v in value for p in v.replace(",", ";").split(";"))
            return tuple(p for p in parts if p)
        return value

    @field_validator("samplers")
    @classmethod
    def _no_repeated_sampler(cls, value: tuple[SamplerName, ...]) -> tuple[SamplerName, ...]:
        repeated = sorted({s.value for s in value if value.count(s) > 1})
        if repeated:
            raise ValueError(f"each sampler may appear once in the order: {', '.join(repeated)} repeated")
        return value

    @field_validator("logit_bias", mode="before")
    @classmethod
    def _bias_values(cls, value: Any) -> Any:
        """Accept "-inf"/"ban" for a ban (TOML, JSON and the environment have no -inf literal)."""
        if isinstance(value, dict):
            return {k: (-math.inf if isinstance(v, str) and v.strip().lower() in BAN_WORDS else v)
                    for k, v in value.items()}  # fmt: skip
        return value

    @field_validator("logit_bias")
    @classmethod
    def _bias_in_range(cls, value: dict[int, float]) -> dict[int, float]:
        for token, bias in value.items():
            if token < 0:
                raise ValueError(f"token id {token} is negative: token ids start at 0")
            if math.isnan(bias) or bias == math.inf or (math.isfinite(bias) and abs(bias) > BIAS_MAX):
                raise ValueError(
                    f"bias {bias} for token {token}: give a number from -{BIAS_MAX:g} to {BIAS_MAX:g}, "
                    "or -inf to ban it"
                )
        return value

    @field_serializer("logit_bias", when_used="json")
    def _bias_as_json(self, value: dict[int, float]) -> dict[str, float | str]:
        """In JSON (store, exports, --json, TOML) a ban is the string "-inf": JSON has no -inf."""
        return {str(t): ("-inf" if b == -math.inf else b) for t, b in value.items()}

    @field_validator("json_schema")
    @classmethod
    def _schema_is_json(cls, value: str) -> str:
        if value.strip():
            try:
                json.loads(value)
            except ValueError as exc:
                raise ValueError(f"the JSON schema is not valid JSON: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_constraint(self) -> SamplingParams:
        if self.grammar.strip() and self.json_schema.strip():
            raise ValueError("set either a grammar or a JSON schema, not both")
        return self

    @property
    def banned(self) -> frozenset[int]:
        """Token ids the logit bias bans (bias -inf)."""
        return frozenset(t for t, b in self.logit_bias.items() if b == -math.inf)

    @property
    def has_constraint(self) -> bool:
        """True when a grammar or JSON schema constrains the reply."""
        return bool(self.grammar.strip() or self.json_schema.strip())

    @property
    def is_greedy(self) -> bool:
        """True when the next token is the arg-max (greedy mode, or temperature 0)."""
        return self.mode is SamplingMode.GREEDY or self.temperature == 0.0


BAN_WORDS = frozenset({"-inf", "-infinity", "ban"})


def breakers_from_text(text: str) -> tuple[str, ...]:
    """DRY sequence breakers from one text: a JSON list of strings (``'["\\n", ":", ","]'``), or
    a single breaker as it is. A plain text with a comma in it (other than just ``,``) is
    refused: it could be one breaker or several. Raises ValueError with the fix."""
    if text.lstrip().startswith("["):
        try:
            decoded = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"sequence breakers: not a valid JSON list of strings ({exc})") from None
        if not isinstance(decoded, list) or not all(isinstance(item, str) for item in decoded):
            raise ValueError('sequence breakers: give a JSON list of strings, e.g. ["\\n", ":", ","]')
        return tuple(decoded)
    if "," in text and text != ",":
        raise ValueError(
            f"sequence breakers {text!r}: one breaker or several? Give a JSON list of strings, "
            'e.g. ["\\n", ":", ","] (a plain value is one breaker, and may only contain a comma if '
            "it is just ,)"
        )
    return (text,) if text else ()


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


def with_bias(params: SamplingParams, token_id: int, bias: float) -> SamplingParams:
    """``params`` with ``token_id`` banned (``bias`` -inf) or its logit bias changed by ``bias``
    (clamped to ±BIAS_MAX; a bias that comes back to 0 is removed; a banned token stays banned
    until its bias is cleared). Raises ValidationError for a negative token id."""
    current = dict(params.logit_bias)
    if bias == -math.inf:
        current[token_id] = -math.inf
    else:
        old = current.get(token_id, 0.0)
        if old != -math.inf:
            new = min(max(old + bias, -BIAS_MAX), BIAS_MAX)
            if new == 0.0:
                current.pop(token_id, None)
            else:
                current[token_id] = new
    return replace_params(params, logit_bias=current)


def bias_problem(params: SamplingParams, n_vocab: int) -> str | None:
    """Why the logit bias can't be used with a vocabulary of ``n_vocab`` tokens (or None)."""
    outside = sorted(t for t in params.logit_bias if not 0 <= t < n_vocab)
    if not outside:
        return None
    names = ", ".join(str(t) for t in outside[:5]) + (", ..." if len(outside) > 5 else "")
    which = "token" if len(outside) == 1 else "tokens"
    return (
        f"the logit bias names {which} {names}, but this model's vocabulary has {n_vocab} tokens "
        f"(ids 0-{n_vocab - 1})"
    )
