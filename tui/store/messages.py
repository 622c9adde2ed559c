"""Message rows: prompts, replies begun, streamed, finished and taken back, and a reply's branch siblings."""

from __future__ import annotations

import logging
import sqlite3
import zlib
from collections.abc import Sequence

from settings.sampling import SamplingParams
from tui.engine.events import ReplyDone
from tui.store import events_codec
from tui.store.chats import require_chat, touch_chat
from tui.store.errors import NotFoundError
from tui.store.export import SiblingRows
from tui.store.records import MessageStatus, ModelRef, Role, StoredReply, stored_reply_of
from tui.store.rows import SiblingInsert, insert_siblings, write_events, write_reply
from tui.store.values import load_params_map, params_json, title_from_prompt

log = logging.getLogger(__name__)


def insert_message(
    db: sqlite3.Connection, chat_id: int, role: Role, text: str, status: MessageStatus, stamp: str
) -> int:
    """Append a message to the chat (the first prompt names an untitled chat); returns its id."""
    _, title_is_auto = require_chat(db, chat_id)
    (position,) = db.execute(
        "SELECT COALESCE(MAX(position) + 1, 0) FROM messages WHERE chat_id = ?", (chat_id,)
    ).fetchone()
    if role is Role.USER and title_is_auto:
        has_prompt = db.execute(
            "SELECT 1 FROM messages WHERE chat_id = ? AND role = 'user' LIMIT 1", (chat_id,)
        ).fetchone()
        if has_prompt is None:
            db.execute("UPDATE chats SET title = ? WHERE id = ?", (title_from_prompt(text), chat_id))
    cursor = db.execute(
        "INSERT INTO messages (chat_id, position, role, text, created_at, status) VALUES (?, ?, ?, ?, ?, ?)",
        (chat_id, position, role.value, text, stamp, status.value),
    )
    touch_chat(db, chat_id, stamp)
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def begin_reply(
    db: sqlite3.Connection,
    chat_id: int,
    params: SamplingParams,
    model: ModelRef | None,
    params_version: int,
    stamp: str,
) -> int:
    """Append an assistant reply about to be generated, as 'interrupted'; returns its message id."""
    message_id = insert_message(db, chat_id, Role.ASSISTANT, "", MessageStatus.INTERRUPTED, stamp)
    write_reply(db, message_id, StoredReply(params={params_version: params}, model=model))
    db.execute("UPDATE chats SET last_params = ? WHERE id = ?", (params_json(params), chat_id))
    return message_id


def update_reply_text(db: sqlite3.Connection, message_id: int, text: str, token_count: int | None) -> None:
    """Save the partial text of a reply in progress (a finished reply is left as it is)."""
    cursor = db.execute(
        "UPDATE messages SET text = ? WHERE id = ? AND role = 'assistant' AND status = 'interrupted'",
        (text, message_id),
    )
    if cursor.rowcount == 0:
        if db.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone() is None:
            raise NotFoundError(f"Reply {message_id} does not exist.")
        return
    if token_count is not None:
        db.execute("UPDATE replies SET token_count = ? WHERE message_id = ?", (token_count, message_id))


def finish_reply(
    db: sqlite3.Connection,
    message_id: int,
    done: ReplyDone,
    blob: bytes | None,
    n_events: int,
    model: ModelRef | None,
    stamp: str,
) -> None:
    """Store a reply's final text and facts (``model`` None keeps the one recorded at the start)."""
    row = db.execute(
        "SELECT m.chat_id, r.params, r.model FROM messages m JOIN replies r ON r.message_id = m.id"
        " WHERE m.id = ?",
        (message_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"Reply {message_id} does not exist.")
    chat_id, params_raw, model_raw = row
    params = load_params_map(params_raw)
    params.update(done.params)
    if model is None and model_raw:
        model = ModelRef.model_validate_json(model_raw)
    reply = stored_reply_of(done, model).model_copy(update={"params": params})
    db.execute("UPDATE messages SET text = ?, status = 'finished' WHERE id = ?", (done.text, message_id))
    write_reply(db, message_id, reply)
    if blob is not None:
        write_events(db, message_id, n_events, blob, stamp)
    touch_chat(db, chat_id, stamp)
    db.execute("UPDATE chats SET last_params = ? WHERE id = ?", (params_json(params[max(params)]), chat_id))


def truncate_chat(db: sqlite3.Connection, chat_id: int, keep: int, stamp: str) -> None:
    """Delete every message from position ``keep`` on."""
    require_chat(db, chat_id)
    db.execute("DELETE FROM messages WHERE chat_id = ? AND position >= ?", (chat_id, keep))
    touch_chat(db, chat_id, stamp)


def set_siblings(
    db: sqlite3.Connection,
    message_id: int,
    ordinal: int,
    branched_at: int | None,
    others: Sequence[SiblingInsert],
) -> None:
    """Record the other continuations of reply ``message_id`` (replacing any recorded before)."""
    row = db.execute("SELECT 1 FROM messages WHERE id = ? AND role = 'assistant'", (message_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"Reply {message_id} does not exist.")
    db.execute(
        "UPDATE messages SET sibling_ordinal = ?, branched_at = ? WHERE id = ?",
        (ordinal, branched_at, message_id),
    )
    db.execute("DELETE FROM reply_siblings WHERE message_id = ?", (message_id,))
    insert_siblings(db, message_id, others)


def sibling_rows(db: sqlite3.Connection, message_id: int) -> list[SiblingRows]:
    """The stored siblings of reply ``message_id`` with their token event rows (None: not kept)."""
    result: list[SiblingRows] = []
    for ordinal, text, status, reply, branched_at, encoding, blob in db.execute(
        "SELECT ordinal, text, status, reply, branched_at, encoding, events FROM reply_siblings"
        " WHERE message_id = ? ORDER BY ordinal",
        (message_id,),
    ).fetchall():
        rows = None
        if blob is not None and encoding == events_codec.ENCODING:
            try:
                rows = events_codec.unpack_rows(blob)
            except (ValueError, zlib.error) as error:
                log.warning("token events of a branch of message %s unreadable: %s", message_id, error)
        reply_facts = StoredReply.model_validate_json(reply)
        result.append((ordinal, text, MessageStatus(status), reply_facts, branched_at, rows))
    return result
