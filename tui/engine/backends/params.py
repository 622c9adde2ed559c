"""How our SamplingParams reach a server: one table row per field, so a new sampler is one line.

llama-server takes every llama.cpp sampler by name; the chain order is sent too (``samplers``), the
same order as the local engine's chain, so a seed gives the same draw logic on both. OpenAI-style
servers take the standard fields; the llama.cpp extensions (top_k, min_p, repeat_penalty) are
understood by llama-server's /v1, llama-cpp-python's server and vLLM, and are ignored or refused
elsewhere (``openai_extensions`` = false sends only the standard ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from settings.sampling import SamplingParams


@dataclass(frozen=True, slots=True)
class ServerField:
    """Where one SamplingParams field goes in a llama-server /completion request."""

    key: str
    """The request's JSON key."""
    sampler: str | None = None
    """The llama.cpp sampler it configures (named in the ``samplers`` chain), if any."""


LLAMA_SERVER_FIELDS: dict[str, ServerField] = {
    # In the local chain's order (tui/engine/llama_engine.py: penalties -> top-k -> top-p -> min-p -> temp).
    "repeat_penalty": ServerField("repeat_penalty", "penalties"),
    "repeat_last_n": ServerField("repeat_last_n", "penalties"),
    "top_k": ServerField("top_k", "top_k"),
    "top_p": ServerField("top_p", "top_p"),
    "min_p": ServerField("min_p", "min_p"),
    "temperature": ServerField("temperature", "temperature"),
}
OPENAI_FIELDS: dict[str, str] = {"temperature": "temperature", "top_p": "top_p"}
OPENAI_EXTENSION_FIELDS: dict[str, str] = {
    "top_k": "top_k",
    "min_p": "min_p",
    "repeat_penalty": "repeat_penalty",
}
CLIENT_SIDE_FIELDS = frozenset({"mode", "max_new_tokens", "seed", "stop"})
"""Handled by the backend itself: greedy, the length cap and stop strings are checked per token here,
the seed is resolved once per reply (and sent)."""


def unmapped_fields(params: SamplingParams) -> list[str]:
    """Fields set away from their default that no server mapping knows (shown as a warning)."""
    known = CLIENT_SIDE_FIELDS | LLAMA_SERVER_FIELDS.keys()
    defaults = SamplingParams()
    return [
        name
        for name in type(params).model_fields
        if name not in known and getattr(params, name) != getattr(defaults, name)
    ]


def llama_server_sampling(params: SamplingParams, seed: int) -> dict[str, Any]:
    """The sampler part of a /completion request for ``params`` (greedy: arg-max, no penalties)."""
    if params.is_greedy:
        # The local engine takes the arg-max of the raw logits; temperature 0 alone does the same.
        return {"temperature": 0.0, "samplers": ["temperature"], "seed": seed}
    body: dict[str, Any] = {"seed": seed, "min_keep": 1}
    chain: list[str] = []
    for name, field in LLAMA_SERVER_FIELDS.items():
        body[field.key] = getattr(params, name)
        if field.sampler and field.sampler not in chain:
            chain.append(field.sampler)
    body["samplers"] = chain
    return body


def openai_sampling(params: SamplingParams, seed: int, *, extensions: bool) -> dict[str, Any]:
    """The sampler part of a chat-completions request."""
    if params.is_greedy:
        body: dict[str, Any] = {"temperature": 0.0, "seed": seed}
        if extensions:
            body["repeat_penalty"] = 1.0
        return body
    body = {key: getattr(params, name) for name, key in OPENAI_FIELDS.items()}
    if extensions:
        body.update({key: getattr(params, name) for name, key in OPENAI_EXTENSION_FIELDS.items()})
    body["seed"] = seed
    return body
