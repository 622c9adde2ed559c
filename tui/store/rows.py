"""Row writers shared by the live chat and the import: one INSERT per table, in one place."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from tui.store import events_codec
from tui.store.records import MessageStatus, StoredReply
from tui.store.values import params_map_json, stop_json, ts

SiblingInsert = tuple[int, str, MessageStatus, StoredReply, int | None, bytes | None, int]
"""A branch sibling to insert: ordinal, text, status, reply, branched_at, packed events or None, n."""


def write_reply(db: sqlite3.Connection, message_id: int, reply: StoredReply) -> None:
    """Insert (or replace) the reply facts of assistant message ``message_id``."""
    db.execute(
        "INSERT OR REPLACE INTO replies (message_id, params, model, seed, stop_kind, stop_label, stop,"
        " token_count, tokens_per_s, prompt_tokens, prompt_evaluated, prompt_ms, first_token_ms, decode_ms,"
        " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            message_id,
            params_map_json(reply.params),
            reply.model.model_dump_json() if reply.model else None,
            reply.seed,
            reply.stop.kind.value if reply.stop else None,
            reply.stop_label,
            stop_json(reply.stop) if reply.stop else None,
            reply.token_count,
            reply.tokens_per_s,
            reply.prompt_tokens,
            reply.prompt_evaluated,
            reply.prompt_ms,
            reply.first_token_ms,
            reply.decode_ms,
            ts(reply.finished_at) if reply.finished_at else None,
        ),
    )


def write_events(db: sqlite3.Connection, message_id: int, n_events: int, blob: bytes, stamp: str) -> None:
    """Insert (or replace) the packed token events of message ``message_id``."""
    db.execute(
        "INSERT OR REPLACE INTO token_events (message_id, encoding, n_events, data, stored_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (message_id, events_codec.ENCODING, n_events, blob, stamp),
    )


def insert_siblings(db: sqlite3.Connection, message_id: int, siblings: Sequence[SiblingInsert]) -> None:
    """Insert the branch siblings of one message."""
    db.executemany(
        "INSERT INTO reply_siblings (message_id, ordinal, text, status, reply, branched_at,"
        " encoding, n_events, events) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                message_id,
                ordinal,
                text,
                status.value,
                reply.model_dump_json(),
                branched_at,
                events_codec.ENCODING if blob is not None else None,
                n_events if blob is not None else 0,
                blob,
            )
            for ordinal, text, status, reply, branched_at, blob, n_events in siblings
        ],
    )
