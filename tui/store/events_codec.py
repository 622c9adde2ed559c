"""Compact storage for token events: one zlib-compressed JSON blob of row arrays per reply."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

from tui.engine.events import Candidate, CutBy, TokenEvent

ENCODING = "rows-v1+zlib"
"""Name of the blob format stored next to each blob (the ``encoding`` column)."""

EVENT_FIELDS: tuple[str, ...] = (
    "index",
    "token_id",
    "text",
    "piece",
    "p_raw",
    "p_final",
    "entropy",
    "params_version",
    "elapsed_ms",
    "candidates",
    "stages",
)
"""Order of the values in one event row. ``stages`` (the survivors after each sampler stage) came later:
a row without it (10 values, as older replies were saved) reads as no stages."""

CANDIDATE_FIELDS: tuple[str, ...] = ("token_id", "text", "logit", "p_raw", "p_final", "cut_by")
"""Order of the values in one candidate row."""


def events_to_rows(events: Sequence[TokenEvent], *, with_candidates: bool = True) -> list[list[Any]]:
    """Token events as plain JSON-able rows (field order: EVENT_FIELDS / CANDIDATE_FIELDS)."""
    return [
        [
            e.index,
            e.token_id,
            e.text,
            e.piece,
            e.p_raw,
            e.p_final,
            e.entropy,
            e.params_version,
            e.elapsed_ms,
            [
                [c.token_id, c.text, c.logit, c.p_raw, c.p_final, c.cut_by.value if c.cut_by else None]
                for c in e.candidates
            ]
            if with_candidates
            else [],
            [[name, count] for name, count in e.stages],
        ]
        for e in events
    ]


def rows_to_events(rows: Sequence[Sequence[Any]]) -> tuple[TokenEvent, ...]:
    """The inverse of :func:`events_to_rows` (raises ValueError/TypeError on malformed rows)."""
    events: list[TokenEvent] = []
    for row in rows:
        if len(row) not in (len(EVENT_FIELDS) - 1, len(EVENT_FIELDS)):
            raise ValueError(f"a token event row has {len(row)} values, expected {len(EVENT_FIELDS)}")
        index, token_id, text, piece, p_raw, p_final, entropy, version, elapsed, cands = row[:10]
        stages = tuple((str(name), int(count)) for name, count in row[10]) if len(row) > 10 else ()
        candidates = []
        for c in cands:
            if len(c) != len(CANDIDATE_FIELDS):
                raise ValueError(f"a candidate row has {len(c)} values, expected {len(CANDIDATE_FIELDS)}")
            candidates.append(
                Candidate(
                    token_id=int(c[0]),
                    text=str(c[1]),
                    logit=float(c[2]),
                    p_raw=float(c[3]),
                    p_final=float(c[4]),
                    cut_by=CutBy(c[5]) if c[5] is not None else None,
                )
            )
        events.append(
            TokenEvent(
                index=int(index),
                token_id=int(token_id),
                text=str(text),
                piece=str(piece),
                p_raw=float(p_raw),
                p_final=float(p_final),
                candidates=tuple(candidates),
                entropy=float(entropy),
                params_version=int(version),
                elapsed_ms=float(elapsed),
                stages=stages,
            )
        )
    return tuple(events)


def pack_rows(rows: list[list[Any]]) -> bytes:
    """Rows as one compressed blob."""
    raw = json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode()
    return zlib.compress(raw, 6)


def pack_events(events: Sequence[TokenEvent], *, max_bytes: int) -> bytes | None:
    """Compress events into one blob of at most ``max_bytes``.

    Falls back to dropping the candidates when the full blob is too big; None when even that is.
    """
    blob = pack_rows(events_to_rows(events))
    if len(blob) <= max_bytes:
        return blob
    blob = pack_rows(events_to_rows(events, with_candidates=False))
    return blob if len(blob) <= max_bytes else None


def unpack_rows(blob: bytes) -> list[list[Any]]:
    """The rows stored in a blob."""
    rows = json.loads(zlib.decompress(blob))
    if not isinstance(rows, list):
        raise ValueError("token event blob does not hold a list")
    return rows


def unpack_events(blob: bytes) -> tuple[TokenEvent, ...]:
    """The token events stored in a blob."""
    return rows_to_events(unpack_rows(blob))
