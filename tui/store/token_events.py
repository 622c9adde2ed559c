"""Token event rows: read one reply's events, measure them, prune them to the retention limits."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from tui.store import events_codec


@dataclass(frozen=True, slots=True)
class EventRetention:
    """How much token-event data the store keeps (chats marked keep_events are exempt)."""

    keep_chats: int = 20
    """Token events are kept for the most recently active chats."""
    max_bytes: int = 64 * 1024 * 1024
    """Total compressed size of all prunable token events."""
    max_message_bytes: int = 8 * 1024 * 1024
    """One reply's blob; bigger ones are stored without candidates, or not at all."""


def event_rows(db: sqlite3.Connection, message_id: int) -> list[list[Any]] | None:
    """A reply's token events as rows (None: not kept, or in an encoding this version cannot read)."""
    row = db.execute("SELECT encoding, data FROM token_events WHERE message_id = ?", (message_id,)).fetchone()
    if row is None or row[0] != events_codec.ENCODING:
        return None
    return events_codec.unpack_rows(row[1])


def events_bytes(db: sqlite3.Connection) -> int:
    """Total compressed size of the stored token events."""
    (total,) = db.execute("SELECT COALESCE(SUM(length(data)), 0) FROM token_events").fetchone()
    return int(total)


def prune_events(db: sqlite3.Connection, keep: EventRetention) -> None:
    """Drop token events outside the retention limits (kept chats excepted); call inside a transaction."""
    db.execute(
        "DELETE FROM token_events WHERE message_id IN ("
        " SELECT m.id FROM messages m JOIN chats c ON c.id = m.chat_id"
        " WHERE c.keep_events = 0 AND c.id NOT IN ("
        "  SELECT id FROM chats ORDER BY touched_at DESC, id DESC LIMIT ?))",
        (keep.keep_chats,),
    )
    db.execute(  # the branches' events follow the same rule: recent or kept chats only
        "UPDATE reply_siblings SET events = NULL, encoding = NULL, n_events = 0"
        " WHERE events IS NOT NULL AND message_id IN ("
        " SELECT m.id FROM messages m JOIN chats c ON c.id = m.chat_id"
        " WHERE c.keep_events = 0 AND c.id NOT IN ("
        "  SELECT id FROM chats ORDER BY touched_at DESC, id DESC LIMIT ?))",
        (keep.keep_chats,),
    )
    rows = db.execute(
        "SELECT e.message_id, length(e.data) FROM token_events e"
        " JOIN messages m ON m.id = e.message_id JOIN chats c ON c.id = m.chat_id"
        " WHERE c.keep_events = 0 ORDER BY e.stored_at DESC, e.message_id DESC"
    ).fetchall()
    total = 0
    doomed = []
    for message_id, size in rows:
        total += size
        if total > keep.max_bytes:
            doomed.append((message_id,))
    db.executemany("DELETE FROM token_events WHERE message_id = ?", doomed)
