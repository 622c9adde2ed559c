"""Import and export: a stored chat to the versioned JSON format and back (see :mod:`tui.store.export`)."""

from __future__ import annotations

import logging
import sqlite3
import zlib
from typing import Any

from tui.store import events_codec
from tui.store.chats import load_chat
from tui.store.comparisons import insert_comparison, load_comparisons
from tui.store.export import ChatExport, SiblingRows, chat_to_export
from tui.store.messages import sibling_rows
from tui.store.rows import insert_siblings, write_events, write_reply
from tui.store.token_events import event_rows
from tui.store.values import params_json, ts

log = logging.getLogger(__name__)


def export_chat(db: sqlite3.Connection, chat_id: int, *, include_events: bool) -> dict[str, Any]:
    """The complete chat as a JSON-able dict; unreadable token events are left out (logged)."""
    chat = load_chat(db, chat_id)
    events: dict[int, list[list[Any]]] = {}
    siblings: dict[int, list[SiblingRows]] = {}
    for message in chat.messages:
        if message.sibling_count > 1:
            siblings[message.id] = [
                (*r[:5], r[5] if include_events else None) for r in sibling_rows(db, message.id)
            ]
        if include_events and message.has_events:
            try:
                rows = event_rows(db, message.id)
            except (ValueError, zlib.error) as error:
                log.warning("token events of message %s left out: %s", message.id, error)
                continue
            if rows is not None:
                events[message.id] = rows
    return chat_to_export(chat, events, siblings, load_comparisons(db, chat_id))


def import_chat(db: sqlite3.Connection, export: ChatExport, stamp: str) -> int:
    """Insert a parsed export as a new chat (call inside a transaction); returns the new chat id."""
    chat = export.chat
    cursor = db.execute(
        "INSERT INTO chats (title, title_is_auto, created_at, updated_at, touched_at, last_params,"
        " keep_events, mode) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            chat.title,
            int(chat.title_is_auto),
            ts(chat.created_at),
            ts(chat.updated_at),
            stamp,
            params_json(chat.last_params) if chat.last_params else None,
            int(chat.keep_events),
            chat.mode,
        ),
    )
    chat_id = cursor.lastrowid
    assert chat_id is not None
    for position, message in enumerate(export.messages):
        cursor = db.execute(
            "INSERT INTO messages (chat_id, position, role, text, created_at, status, sibling_ordinal,"
            " branched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                chat_id,
                position,
                message.role.value,
                message.text,
                ts(message.created_at),
                message.status.value,
                message.sibling_ordinal,
                message.branched_at,
            ),
        )
        message_id = cursor.lastrowid
        assert message_id is not None
        insert_siblings(
            db,
            message_id,
            [
                (
                    s.ordinal,
                    s.text,
                    s.status,
                    s.reply,
                    s.branched_at,
                    events_codec.pack_rows(s.token_events.rows) if s.token_events else None,
                    len(s.token_events.rows) if s.token_events else 0,
                )
                for s in message.siblings
            ],
        )
        if message.reply is not None:
            write_reply(db, message_id, message.reply)
        if message.token_events is not None:
            rows = message.token_events.rows
            write_events(db, message_id, len(rows), events_codec.pack_rows(rows), stamp)
    for comparison in export.comparisons:
        insert_comparison(db, chat_id, comparison)
    return chat_id
