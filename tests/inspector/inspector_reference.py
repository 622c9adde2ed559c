"""An independent, deliberately plain implementation of the sampler chain, for checking the inspector.

Written from the definitions (llama.cpp's order: top-k -> top-p -> min-p -> temperature), with
Python floats and loops over the *whole* vocabulary; it shares no code with tui.engine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tui.engine.events import Candidate


@dataclass
class Reference:
    """What the samplers do to a full vocabulary of logits."""

    order: list[int]
    """Token ids from the highest logit to the lowest (ties: lower id first)."""
    p_raw: dict[int, float]
    """Softmax at temperature 1 over the whole vocabulary."""
    cum_raw: dict[int, float]
    """Cumulative p_raw in ``order``."""
    p_final: dict[int, float]
    """Probability of the draw after all samplers (0 when cut)."""
    cut_by: dict[int, str | None]
    entropy_bits: float
    """Entropy of p_raw in bits."""


def softmax(values: Sequence[float]) -> list[float]:
    """Plain softmax."""
    peak = max(values)
    weights = [math.exp(v - peak) for v in values]
    total = sum(weights)
    return [w / total for w in weights]


def reference(
    logits: Sequence[float],
    *,
    top_k: int,
    top_p: float,
    min_p: float,
    temperature: float,
    greedy: bool = False,
    penalized: frozenset[int] = frozenset(),
    repeat_penalty: float = 1.0,
) -> Reference:
    """The sampler chain over every token of ``logits`` (p_raw, cum_raw and entropy: raw logits).

    The repeat penalty (on the ``penalized`` ids) comes first, as in llama.cpp; greedy ignores it.
    """
    vocab = len(logits)
    raw_logits = list(logits)
    order = sorted(range(vocab), key=lambda i: (-logits[i], i))
    probs = softmax(logits)
    p_raw = {i: probs[i] for i in range(vocab)}
    cum_raw: dict[int, float] = {}
    running = 0.0
    for i in order:
        running += probs[i]
        cum_raw[i] = running
    entropy = -sum(p * math.log2(p) for p in probs if p > 0)
    cut_by: dict[int, str | None] = dict.fromkeys(range(vocab))
    if greedy or temperature <= 0:
        for i in order[1:]:
            cut_by[i] = "greedy"
        p_final = {i: (1.0 if i == order[0] else 0.0) for i in range(vocab)}
        return Reference(order, p_raw, cum_raw, p_final, cut_by, entropy)

    logits = [
        (v * repeat_penalty if v <= 0 else v / repeat_penalty) if i in penalized else v
        for i, v in enumerate(raw_logits)
    ]
    alive = sorted(range(vocab), key=lambda i: (-logits[i], i))
    if top_k > 0:
        for i in alive[top_k:]:
            cut_by[i] = "top_k"
        alive = alive[:top_k]
    if top_p < 1.0:
        renorm = softmax([logits[i] for i in alive])
        kept: list[int] = []
        mass = 0.0
        for i, p in zip(alive, renorm, strict=True):
            kept.append(i)
            mass += p
            if mass >= top_p - 1e-6:
                break
        for i in alive[len(kept) :]:
            cut_by[i] = "top_p"
        alive = kept
    if min_p > 0.0:
        threshold = logits[alive[0]] + math.log(min_p)
        kept = [alive[0]] + [i for i in alive[1:] if logits[i] >= threshold]
        for i in alive:
            if i not in kept:
                cut_by[i] = "min_p"
        alive = kept
    drawn = softmax([logits[i] / temperature for i in alive])
    p_final = dict.fromkeys(range(vocab), 0.0)
    for i, p in zip(alive, drawn, strict=True):
        p_final[i] = p
    return Reference(order, p_raw, cum_raw, p_final, cut_by, entropy)


def top_candidates(logits: Sequence[float], n: int, texts: Sequence[str] | None = None) -> list[Candidate]:
    """The top-``n`` tokens as the engine stores them (raw logit and exact p_raw; p_final unused)."""
    probs = softmax(logits)
    order = sorted(range(len(logits)), key=lambda i: (-logits[i], i))[:n]
    return [
        Candidate(i, texts[i] if texts else f"t{i}", float(logits[i]), probs[i], 0.0, None) for i in order
    ]
