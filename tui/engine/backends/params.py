"""How our SamplingParams reach a server: one table row per field, so a new sampler is one line.

llama-server takes every llama.cpp sampler by its own name, and the chain order too (``samplers``:
our SamplerName values are llama.cpp's names), so a reply is drawn by the same chain as locally.
Greedy is the local engine's greedy: the constraints (logit bias, grammar), penalties and DRY, then
the arg-max (temperature 0). OpenAI-style servers take the standard fields; the llama.cpp
extensions (top_k, min_p, repeat_penalty) are understood by llama-server's /v1, llama-cpp-python's
server and vLLM, and are left out with ``openai_extensions`` = false.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from settings.sampling import SamplerName, SamplingParams


def _same(value: Any) -> Any:
    return value


def _bias(value: dict[int, float]) -> list[list[Any]]:
    """llama-server's logit_bias: [[id, bias], ...], a ban as ``false``."""
    return [[token, False if bias == -math.inf else bias] for token, bias in sorted(value.items())]


def _schema(value: str) -> Any:
    return json.loads(value) if value else None


LLAMA_SERVER_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    # field: (the /completion request key, how the value is sent)
    "temperature": ("temperature", _same),
    "top_k": ("top_k", _same),
    "top_p": ("top_p", _same),
    "min_p": ("min_p", _same),
    "repeat_penalty": ("repeat_penalty", _same),
    "repeat_last_n": ("repeat_last_n", _same),
    "presence_penalty": ("presence_penalty", _same),
    "frequency_penalty": ("frequency_penalty", _same),
    "typical_p": ("typical_p", _same),
    "top_n_sigma": ("top_n_sigma", lambda v: v if v > 0 else -1.0),
    "xtc_probability": ("xtc_probability", _same),
    "xtc_threshold": ("xtc_threshold", _same),
    "dry_multiplier": ("dry_multiplier", _same),
    "dry_base": ("dry_base", _same),
    "dry_allowed_length": ("dry_allowed_length", _same),
    "dry_last_n": ("dry_penalty_last_n", _same),
    "dry_sequence_breakers": ("dry_sequence_breakers", list),
    "mirostat": ("mirostat", int),
    "mirostat_tau": ("mirostat_tau", _same),
    "mirostat_eta": ("mirostat_eta", _same),
    "dynatemp_range": ("dynatemp_range", _same),
    "dynatemp_exponent": ("dynatemp_exponent", _same),
    "logit_bias": ("logit_bias", _bias),
    "grammar": ("grammar", _same),
    "json_schema": ("json_schema", _schema),
    "samplers": ("samplers", lambda order: [str(name) for name in order]),
}
OPENAI_FIELDS: dict[str, str] = {
    "temperature": "temperature",
    "top_p": "top_p",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
OPENAI_EXTENSION_FIELDS: dict[str, str] = {
    "top_k": "top_k",
    "min_p": "min_p",
    "repeat_penalty": "repeat_penalty",
}
CLIENT_SIDE_FIELDS = frozenset({"mode", "max_new_tokens", "seed", "stop"})
"""Handled by the backend itself: greedy, the length cap and stop strings are checked per token here,
the seed is resolved once per reply (and sent)."""
GREEDY_KEPT = (SamplerName.PENALTIES, SamplerName.DRY)
"""The ordered samplers greedy keeps before its arg-max (as the local chain does)."""


def unmapped_fields(params: SamplingParams) -> list[str]:
    """Fields set away from their default that no server mapping knows (the reply says so)."""
    known = CLIENT_SIDE_FIELDS | LLAMA_SERVER_FIELDS.keys()
    defaults = SamplingParams()
    return [
        name
        for name in type(params).model_fields
        if name not in known and getattr(params, name) != getattr(defaults, name)
    ]


def llama_server_sampling(params: SamplingParams, seed: int, n_ctx: int = 2048) -> dict[str, Any]:
    """The sampler part of a /completion request for ``params`` (``n_ctx``: the server's context)."""
    body: dict[str, Any] = {"seed": seed, "min_keep": 1}
    for name, (key, send) in LLAMA_SERVER_FIELDS.items():
        if name in type(params).model_fields:
            value = send(getattr(params, name))
            if value is not None:
                body[key] = value
    if body.get("dry_penalty_last_n") == -1:  # ours: the whole context; the server wants a count
        body["dry_penalty_last_n"] = n_ctx
    if params.is_greedy:
        body.update(temperature=0.0, dynatemp_range=0.0, mirostat=0)
        body["samplers"] = [str(name) for name in params.samplers if name in GREEDY_KEPT] + ["temperature"]
    return body


def openai_sampling(params: SamplingParams, seed: int, *, extensions: bool) -> dict[str, Any]:
    """The sampler part of a chat-completions request."""
    body: dict[str, Any] = {key: getattr(params, name) for name, key in OPENAI_FIELDS.items()}
    if extensions:
        body.update({key: getattr(params, name) for name, key in OPENAI_EXTENSION_FIELDS.items()})
    if params.logit_bias:  # OpenAI's range is -100..100; a ban is -100
        body["logit_bias"] = {str(t): max(-100.0, b) for t, b in params.logit_bias.items()}
    if params.is_greedy:
        body["temperature"] = 0.0
    body["seed"] = seed
    return body
