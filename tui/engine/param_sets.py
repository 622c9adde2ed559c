"""Parameter sets for a compare: ``key=value`` texts, presets and one-parameter sweeps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from settings.sampling import SamplingParams, replace_params
from tui.engine.events import EngineError


class ParamSetError(EngineError):
    """A parameter set that is not valid (the message names it)."""


@dataclass(frozen=True, slots=True)
class Sweep:
    """One parameter taken through a few values, the rest as the base set."""

    name: str
    """Shown in the chooser, e.g. ``temperature 0.2 / 0.8 / 1.5``."""
    changes: tuple[Mapping[str, Any], ...]


SWEEPS: tuple[Sweep, ...] = (
    Sweep("temperature 0.2 / 0.8 / 1.5", ({"temperature": 0.2}, {"temperature": 0.8}, {"temperature": 1.5})),
    Sweep(
        "max new tokens 100 / 150 / 200",
        ({"max_new_tokens": 100}, {"max_new_tokens": 150}, {"max_new_tokens": 200}),
    ),
    Sweep("greedy vs sample", ({"mode": "greedy"}, {"mode": "sample"})),
    Sweep("top-k 1 / 3 / 40", ({"top_k": 1}, {"top_k": 3}, {"top_k": 40})),
)
"""The sweeps offered by the compare view."""


def parse_param_set(
    text: str, base: SamplingParams, presets: Mapping[str, SamplingParams], *, name: str = "set"
) -> SamplingParams:
    """``text`` applied to ``base``: comma-separated ``key=value`` pairs and/or a preset name
    (``preset=creative`` or just ``creative``, applied first). Raises ParamSetError naming ``name``."""
    params = base
    changes: dict[str, Any] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq:
            key, value = "preset", key
        if key == "preset":
            preset = presets.get(value.strip())
            if preset is None:
                known = ", ".join(sorted(presets))
                raise ParamSetError(f"{name} ({text!r}): no preset {value.strip()!r} (presets: {known}).")
            params = preset
            continue
        if key not in SamplingParams.model_fields:
            known = ", ".join(SamplingParams.model_fields)
            raise ParamSetError(f"{name} ({text!r}): {key!r} is not a sampling parameter ({known}).")
        changes[key] = value.strip()
    return apply_changes(params, changes, name=f"{name} ({text!r})")


def apply_changes(params: SamplingParams, changes: Mapping[str, Any], *, name: str) -> SamplingParams:
    """``params`` with ``changes`` (validated); raises ParamSetError naming ``name``."""
    try:
        return replace_params(params, **changes)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ParamSetError(f"{name}: {problems}.") from None


def parse_param_sets(
    texts: Sequence[str], base: SamplingParams, presets: Mapping[str, SamplingParams]
) -> list[SamplingParams]:
    """Every set parsed (``set 1``, ``set 2``... in messages); the first invalid one raises."""
    return [parse_param_set(text, base, presets, name=f"set {i + 1}") for i, text in enumerate(texts)]


def sweep_sets(sweep: Sweep, base: SamplingParams) -> list[SamplingParams]:
    """The sweep's parameter sets on ``base``."""
    return [apply_changes(base, change, name=sweep.name) for change in sweep.changes]


def describe(params: SamplingParams, base: SamplingParams | None = None) -> str:
    """A short label of a set: what differs from ``base`` (or the main knobs), e.g. ``temperature 1.5``."""
    if params.is_greedy:
        head = "greedy"
    else:
        head = (
            f"T {params.temperature:g} · top-k {params.top_k} · top-p {params.top_p:g} "
            f"· min-p {params.min_p:g}"
        )
    tail = f" · max {params.max_new_tokens}"
    if params.seed >= 0:
        tail += f" · seed {params.seed}"
    if base is not None:
        diff = [
            f"{key.replace('_', ' ')} {_shown(getattr(params, key))}"
            for key in SamplingParams.model_fields
            if getattr(params, key) != getattr(base, key)
        ]
        if diff:
            return " · ".join(diff)
    return head + tail


def column_labels(sets: Sequence[SamplingParams]) -> list[str]:
    """One label per set: the parameters that differ among the sets (all of them, for every set),
    e.g. ``temperature 0.2`` / ``temperature 1.5``; the full summary when they are all the same."""
    keys = [key for key in SamplingParams.model_fields if len({repr(getattr(p, key)) for p in sets}) > 1]
    if not keys:
        return [describe(p) for p in sets]
    return [" · ".join(f"{key.replace('_', ' ')} {_shown(getattr(p, key))}" for key in keys) for p in sets]


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if hasattr(value, "value"):
        return str(value.value)
    return str(value)
