"""A finished comparison as data: kept by the compare view, written as JSON (no Textual here).

``tokendial.compare`` version 1: the prompt's messages, then per column its parameters (every
version it used), stop reason (with the badge's label), seed, text, token count and tok/s, and
whether it was kept; and where the columns parted.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from settings.sampling import SamplingParams
from tui.engine.events import ChatMessage, ReplyDone, TokenEvent
from tui.engine.parting import Parting
from tui.headless_io import plain

FORMAT = "tokendial.compare"
VERSION = 1


@dataclass(frozen=True, slots=True)
class CompareOutcome:
    """What a compare ended with: the kept column (or None), and every column's reply."""

    promoted: int | None
    sets: tuple[SamplingParams, ...]
    events: tuple[tuple[TokenEvent, ...], ...]
    dones: tuple[ReplyDone | None, ...]
    parting: Parting | None
    messages: tuple[ChatMessage, ...] = ()


def comparison_record(outcome: CompareOutcome) -> dict[str, Any]:
    """The comparison as a JSON-ready dict."""
    columns = []
    for column, (params, done) in enumerate(zip(outcome.sets, outcome.dones, strict=True)):
        entry: dict[str, Any] = {
            "column": column,
            "params": params.model_dump(mode="json"),
            "kept": outcome.promoted == column,
        }
        if done is not None:
            entry |= {
                "params_versions": {str(v): p.model_dump(mode="json") for v, p in done.params.items()},
                "stop": {**plain(dataclasses.asdict(done.stop)), "label": done.stop.label()},
                "seed": done.seed,
                "text": done.text,
                "generated": done.generated,
                "tokens_per_s": done.tokens_per_s,
            }
        columns.append(entry)
    return {
        "format": FORMAT,
        "version": VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "messages": [{"role": m.role, "content": m.content} for m in outcome.messages],
        "columns": columns,
        "parting": plain(dataclasses.asdict(outcome.parting)) if outcome.parting else None,
    }


def write_comparison(outcome: CompareOutcome, directory: Path) -> Path:
    """Write the comparison to ``directory/compare-<time>.json`` (created if needed); returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = directory / f"compare-{stamp}.json"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"compare-{stamp}-{n}.json"
    path.write_text(
        json.dumps(comparison_record(outcome), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    return path
