"""Comparison rows: a compare run saved with its chat, each column with its reply facts (schema 6)."""

from __future__ import annotations

import logging
import sqlite3

from pydantic import ValidationError

from tui.store.errors import NotFoundError
from tui.store.records import StoredComparison, StoredComparisonColumn, StoredReply
from tui.store.values import dt, ts

log = logging.getLogger(__name__)


def insert_comparison(db: sqlite3.Connection, chat_id: int, comparison: StoredComparison) -> int:
    """Insert one comparison of chat ``chat_id`` with its columns; returns its id."""
    cursor = db.execute(
        "INSERT INTO comparisons (chat_id, after_messages, prompt, mode, kept, parting, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            chat_id,
            comparison.after_messages,
            comparison.prompt,
            comparison.mode,
            comparison.kept,
            comparison.parting,
            ts(comparison.created_at),
        ),
    )
    comparison_id = cursor.lastrowid
    assert comparison_id is not None
    db.executemany(
        "INSERT INTO comparison_columns (comparison_id, column_index, label, text, reply)"
        " VALUES (?, ?, ?, ?, ?)",
        [
            (comparison_id, index, column.label, column.text, column.reply.model_dump_json())
            for index, column in enumerate(comparison.columns)
        ],
    )
    return comparison_id


def message_count(db: sqlite3.Connection, chat_id: int) -> int:
    """How many messages chat ``chat_id`` has now (NotFoundError: the chat is gone)."""
    if db.execute("SELECT 1 FROM chats WHERE id = ?", (chat_id,)).fetchone() is None:
        raise NotFoundError(f"Chat {chat_id} does not exist (it may have been deleted).")
    return int(db.execute("SELECT COUNT(*) FROM messages WHERE chat_id = ?", (chat_id,)).fetchone()[0])


def load_comparisons(db: sqlite3.Connection, chat_id: int) -> list[StoredComparison]:
    """The comparisons of chat ``chat_id`` in the order they were saved (unreadable ones logged, skipped)."""
    comparisons = []
    rows = db.execute(
        "SELECT id, after_messages, prompt, mode, kept, parting, created_at FROM comparisons"
        " WHERE chat_id = ? ORDER BY id",
        (chat_id,),
    ).fetchall()
    for comparison_id, after, prompt, mode, kept, parting, created in rows:
        columns = db.execute(
            "SELECT label, text, reply FROM comparison_columns WHERE comparison_id = ? ORDER BY column_index",
            (comparison_id,),
        ).fetchall()
        try:
            comparisons.append(
                StoredComparison(
                    prompt=prompt,
                    columns=tuple(
                        StoredComparisonColumn(
                            label=label, text=text, reply=StoredReply.model_validate_json(reply)
                        )
                        for label, text, reply in columns
                    ),
                    mode=mode,
                    kept=kept,
                    parting=parting,
                    after_messages=after,
                    created_at=dt(created),
                )
            )
        except (ValidationError, ValueError) as error:
            log.warning("comparison %s of chat %s unreadable: %s", comparison_id, chat_id, error)
    return comparisons
