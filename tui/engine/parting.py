"""Where compared replies part: the first position at which the columns did not pick the same token."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tui.engine.events import StopKind, StopReason, TokenEvent


@dataclass(frozen=True, slots=True)
class PartChoice:
    """What one column did at the parting position."""

    column: int
    token_id: int | None
    """The token it picked, or None when its reply ended there."""
    text: str
    """The token's own text, or the stop badge's label when the reply ended there."""
    p_raw: float | None
    """Its probability at temperature 1 (None when the reply ended there)."""
    p_final: float | None
    """Its probability after the column's samplers (None when the reply ended there)."""
    others: tuple[tuple[int, float | None], ...] = ()
    """(token id, p_raw in this column's distribution) of the other columns' picks; None when the
    token was not among this column's top-N candidates."""


@dataclass(frozen=True, slots=True)
class Parting:
    """The first reply position where the columns differ, with each column's choice there."""

    index: int
    choices: tuple[PartChoice, ...]

    def describe(self) -> str:
        """One line, e.g. ``parted at token 7: #1 ' the' p=0.62 | #2 ' a' p=0.21``."""
        parts = []
        for choice in self.choices:
            if choice.token_id is None:
                parts.append(f"#{choice.column + 1} ended ({choice.text})")
            else:
                shown = f"p={choice.p_raw:.2f}" if choice.p_raw is not None else "p=?"
                if choice.p_final is not None and choice.p_final != choice.p_raw:
                    shown += f" (after samplers {choice.p_final:.2f})"
                parts.append(f"#{choice.column + 1} {choice.text!r} {shown}")
        return f"parted at token {self.index}: " + " | ".join(parts)


def where_they_part(
    columns: Sequence[Sequence[TokenEvent]], stops: Sequence[StopReason | None]
) -> Parting | None:
    """The first index where the columns' tokens differ (a column that ended there counts as
    different); None while undecided (a shorter column still running) or when all agree."""
    if len(columns) < 2:
        return None
    shortest = min(len(tokens) for tokens in columns)
    for i in range(shortest):
        first = columns[0][i].token_id
        if any(tokens[i].token_id != first for tokens in columns[1:]):
            return _parting_at(i, columns, stops)
    if all(len(tokens) == shortest for tokens in columns):
        return _ended_differently(shortest, stops)
    if any(len(tokens) == shortest and stops[c] is None for c, tokens in enumerate(columns)):
        return None  # a shorter column is still running: not decided yet
    return _parting_at(shortest, columns, stops)


def _parting_at(
    index: int, columns: Sequence[Sequence[TokenEvent]], stops: Sequence[StopReason | None]
) -> Parting:
    picks = [tokens[index].token_id for tokens in columns if index < len(tokens)]
    choices = []
    for c, tokens in enumerate(columns):
        if index >= len(tokens):
            stop = stops[c]
            choices.append(PartChoice(c, None, stop.label() if stop else "running", None, None))
            continue
        event = tokens[index]
        by_id = {cand.token_id: cand.p_raw for cand in event.candidates}
        others = tuple((token, by_id.get(token)) for token in dict.fromkeys(picks) if token != event.token_id)
        choices.append(
            PartChoice(c, event.token_id, event.piece, _finite(event.p_raw), event.p_final, others)
        )
    return Parting(index, tuple(choices))


def _ended_differently(index: int, stops: Sequence[StopReason | None]) -> Parting | None:
    """Same tokens throughout: they part only if all ended and not for the same kind of reason."""
    if any(stop is None for stop in stops):
        return None
    kinds = {stop.kind for stop in stops if stop is not None}
    if len(kinds) <= 1 or kinds == {StopKind.EOS}:
        return None
    return Parting(
        index, tuple(PartChoice(c, None, stop.label(), None, None) for c, stop in enumerate(stops) if stop)
    )


def _finite(value: float) -> float | None:
    return None if value != value else value  # NaN (no candidates captured) -> None
