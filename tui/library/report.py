"""The library as text (``tokendial models``) and as JSON (``--json``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from tui.library.card import card_facts, card_line
from tui.library.scan import Library, LibraryEntry


def _safe(text: str) -> str:
    """A file name or header string without control characters (they could drive the terminal)."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def library_text(library: Library, n_ctx: int, *, color: bool = False, details: bool = False) -> str:
    """One block per source, one line per model (its card in a line, or why it can't be used)."""
    lines: list[str] = []
    bold, dim, red, end = ("\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[0m") if color else ("", "", "", "")
    source = None
    for entry in library.entries:
        if entry.source != source:
            source = entry.source
            lines.append(f"{bold}{source}{end}")
        if entry.card is not None and entry.problem is None:
            lines.append(f"  {_safe(entry.label)}")
            lines.append(f"    {dim}{_safe(card_line(entry.card, n_ctx))}{end}")
            if details:
                lines += [f"      {name}: {_safe(value)}" for name, value in card_facts(entry.card, n_ctx)]
        else:
            lines.append(f"  {_safe(entry.label)}")
            lines.append(f"    {red}unusable: {_safe(entry.problem or '?')}{end}")
    if not library.entries:
        lines.append("no GGUF models found; looked in:")
        lines += [f"  {location.path} ({location.source})" for location in library.locations]
        lines.append(
            "`tokendial fetch` installs the default model; "
            "`tokendial fetch hf:OWNER/REPO` gets one from the hub"
        )
    if library.notes:
        lines.append(f"{bold}not looked through{end}")
        lines += [f"  {_safe(note)}" for note in library.notes]
    return "\n".join(lines)


def entry_json(entry: LibraryEntry, n_ctx: int) -> dict[str, Any]:
    """One entry as a JSON-ready dict."""
    record: dict[str, Any] = {
        "label": entry.label,
        "source": entry.source,
        "path": str(entry.path),
        "parts": [str(part) for part in entry.parts],
        "usable": entry.usable,
        "problem": entry.problem,
        "card": None,
    }
    if entry.card is not None:
        card = dataclasses.asdict(entry.card)
        card["has_chat_template"] = entry.card.has_chat_template
        card["chat_template"] = entry.card.chat_template
        card["kv_cache_bytes"] = entry.card.kv_cache_bytes(n_ctx)
        card["memory_estimate_bytes"] = entry.card.memory_estimate(n_ctx)
        card["n_ctx"] = n_ctx
        record["card"] = card
    return record


def library_json(library: Library, n_ctx: int) -> dict[str, Any]:
    """The whole library as a JSON-ready dict."""
    return {
        "models": [entry_json(entry, n_ctx) for entry in library.entries],
        "notes": list(library.notes),
        "looked_in": [{"path": str(loc.path), "source": loc.source} for loc in library.locations],
    }
