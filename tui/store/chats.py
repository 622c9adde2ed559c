"""Chat rows: create, rename, delete, list and search, load a chat with all its messages."""

from __future__ import annotations

import sqlite3
from typing import Any

from settings.sampling import SamplingParams
from tui.store.errors import NotFoundError
from tui.store.records import (
    ChatSummary,
    MessageStatus,
    ModelRef,
    Role,
    StoredChat,
    StoredMessage,
    StoredReply,
)
from tui.store.values import (
    DEFAULT_TITLE,
    dt,
    like_pattern,
    load_params,
    load_params_map,
    load_stop,
    params_json,
)


def create_chat(db: sqlite3.Connection, title: str | None, params: SamplingParams | None, stamp: str) -> int:
    """Insert a new empty chat (untitled: it takes its title from its first prompt); returns its id."""
    cursor = db.execute(
        "INSERT INTO chats (title, title_is_auto, created_at, updated_at, touched_at, last_params)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            title.strip() if title and title.strip() else DEFAULT_TITLE,
            0 if title and title.strip() else 1,
            stamp,
            stamp,
            stamp,
            params_json(params) if params else None,
        ),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def require_chat(db: sqlite3.Connection, chat_id: int) -> tuple[int, int]:
    """(id, title_is_auto) of chat ``chat_id``; NotFoundError when it does not exist."""
    row = db.execute("SELECT id, title_is_auto FROM chats WHERE id = ?", (chat_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"Chat {chat_id} does not exist (it may have been deleted).")
    return int(row[0]), int(row[1])


def set_chat_column(db: sqlite3.Connection, chat_id: int, column: str, value: object) -> None:
    """Set one column of an existing chat (title, last_params, keep_events...)."""
    require_chat(db, chat_id)
    db.execute(f"UPDATE chats SET {column} = ? WHERE id = ?", (value, chat_id))


def touch_chat(db: sqlite3.Connection, chat_id: int, stamp: str) -> None:
    """Mark the chat as updated (and recently active) at ``stamp``."""
    db.execute("UPDATE chats SET updated_at = ?, touched_at = ? WHERE id = ?", (stamp, stamp, chat_id))


def list_chats(db: sqlite3.Connection, search: str | None, limit: int | None) -> list[ChatSummary]:
    """Chats, most recently updated first; ``search`` matches titles and message text (any case)."""
    params: list[Any] = []
    where = ""
    if search and search.strip():
        pattern = like_pattern(search.strip())
        where = (
            "WHERE c.title LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages s"
            " WHERE s.chat_id = c.id AND s.text LIKE ? ESCAPE '\\')"
        )
        params += [pattern, pattern]
    sql = (
        "SELECT c.id, c.title, c.created_at, c.updated_at,"
        " (SELECT COUNT(*) FROM messages m WHERE m.chat_id = c.id),"
        " (SELECT m.text FROM messages m WHERE m.chat_id = c.id AND m.role = 'user'"
        "  ORDER BY m.position LIMIT 1)"
        f" FROM chats c {where} ORDER BY c.updated_at DESC, c.id DESC"
    )
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    summaries = []
    for chat_id, title, created, updated, count, first_prompt in db.execute(sql, params).fetchall():
        snippet = _snippet(db, chat_id, search.strip()) if search and search.strip() else None
        summaries.append(
            ChatSummary(
                id=chat_id,
                title=title,
                created_at=dt(created),
                updated_at=dt(updated),
                message_count=count,
                snippet=snippet if snippet is not None else " ".join((first_prompt or "").split())[:80],
            )
        )
    return summaries


def _snippet(db: sqlite3.Connection, chat_id: int, search: str) -> str | None:
    row = db.execute(
        "SELECT text FROM messages WHERE chat_id = ? AND text LIKE ? ESCAPE '\\' ORDER BY position LIMIT 1",
        (chat_id, like_pattern(search)),
    ).fetchone()
    if row is None:
        return None
    text = " ".join(row[0].split())
    at = text.lower().find(search.lower())
    if at < 0:
        return text[:80]
    start = max(0, at - 30)
    return ("…" if start else "") + text[start : at + len(search) + 50]


def load_chat(db: sqlite3.Connection, chat_id: int) -> StoredChat:
    """A chat with all its messages and the parameters its next reply should use."""
    row = db.execute(
        "SELECT id, title, title_is_auto, created_at, updated_at, last_params, keep_events, mode"
        " FROM chats WHERE id = ?",
        (chat_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"Chat {chat_id} does not exist (it may have been deleted).")
    messages = []
    for m in db.execute(
        "SELECT m.id, m.position, m.role, m.text, m.created_at, m.status,"
        " r.params, r.model, r.seed, r.stop, r.stop_label, r.token_count, r.tokens_per_s,"
        " r.prompt_tokens, r.prompt_evaluated, r.prompt_ms, r.first_token_ms, r.decode_ms, r.finished_at,"
        " r.message_id IS NOT NULL, e.message_id IS NOT NULL, m.sibling_ordinal, m.branched_at,"
        " (SELECT COUNT(*) FROM reply_siblings s WHERE s.message_id = m.id)"
        " FROM messages m LEFT JOIN replies r ON r.message_id = m.id"
        " LEFT JOIN token_events e ON e.message_id = m.id"
        " WHERE m.chat_id = ? ORDER BY m.position",
        (chat_id,),
    ).fetchall():
        reply = None
        if m[19]:
            reply = StoredReply(
                params=load_params_map(m[6]),
                model=ModelRef.model_validate_json(m[7]) if m[7] else None,
                seed=m[8],
                stop=load_stop(m[9]),
                stop_label=m[10],
                token_count=m[11],
                tokens_per_s=m[12],
                prompt_tokens=m[13],
                prompt_evaluated=m[14],
                prompt_ms=m[15],
                first_token_ms=m[16],
                decode_ms=m[17],
                finished_at=dt(m[18]) if m[18] else None,
            )
        messages.append(
            StoredMessage(
                id=m[0],
                position=m[1],
                role=Role(m[2]),
                text=m[3],
                created_at=dt(m[4]),
                status=MessageStatus(m[5]),
                reply=reply,
                has_events=bool(m[20]),
                sibling_ordinal=m[21],
                branched_at=m[22],
                sibling_count=m[23] + 1,
            )
        )
    return StoredChat(
        id=row[0],
        title=row[1],
        title_is_auto=bool(row[2]),
        created_at=dt(row[3]),
        updated_at=dt(row[4]),
        last_params=load_params(row[5]),
        keep_events=bool(row[6]),
        messages=tuple(messages),
        mode=row[7],
    )
