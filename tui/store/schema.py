"""The database schema as an ordered list of migrations; ``schema_version`` records how far a file got.

Version 3: the other continuations (branch siblings) of an assistant reply. The message row is the
branch shown (``sibling_ordinal`` is its place among its siblings, ``branched_at`` the token it
branched at); ``reply_siblings`` holds the others, each with its text, reply facts and token events.

Version 4: ``chat_leases``, which running tokendial writes which chat (see :mod:`tui.store.leases`).
Version 5: a chat's ``mode``: ``chat`` (the chat template) or ``completion`` (text completion: the
messages' texts joined are continued as they are).
Version 6: ``comparisons`` (a compare run saved with its chat: the prompt, which column was kept,
where the columns parted) and ``comparison_columns`` (each column's label, text and reply facts:
parameters, stop reason, token count, seed, speed, as one StoredReply JSON).
"""

from __future__ import annotations

import sqlite3

from tui.store.errors import StoreCorruptError, StoreVersionError

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE chats (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            text TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (chat_id, position)
        );
        CREATE INDEX chats_by_update ON chats(updated_at);
        """,
    ),
    (
        2,
        """
        ALTER TABLE chats ADD COLUMN title_is_auto INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE chats ADD COLUMN last_params TEXT;
        ALTER TABLE chats ADD COLUMN keep_events INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE chats ADD COLUMN touched_at TEXT NOT NULL DEFAULT '';
        UPDATE chats SET touched_at = updated_at;
        ALTER TABLE messages ADD COLUMN status TEXT NOT NULL DEFAULT 'finished'
            CHECK (status IN ('finished', 'interrupted'));
        CREATE TABLE replies (
            message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
            params TEXT NOT NULL,
            model TEXT,
            seed INTEGER,
            stop_kind TEXT,
            stop_label TEXT,
            stop TEXT,
            token_count INTEGER NOT NULL DEFAULT 0,
            tokens_per_s REAL,
            prompt_tokens INTEGER,
            prompt_evaluated INTEGER,
            prompt_ms REAL,
            first_token_ms REAL,
            decode_ms REAL,
            finished_at TEXT
        );
        CREATE TABLE token_events (
            message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
            encoding TEXT NOT NULL,
            n_events INTEGER NOT NULL,
            data BLOB NOT NULL,
            stored_at TEXT NOT NULL
        );
        CREATE INDEX chats_by_touch ON chats(touched_at);
        """,
    ),
    (
        3,
        """
        ALTER TABLE messages ADD COLUMN sibling_ordinal INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE messages ADD COLUMN branched_at INTEGER;
        CREATE TABLE reply_siblings (
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL,
            text TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'finished' CHECK (status IN ('finished', 'interrupted')),
            reply TEXT NOT NULL,
            branched_at INTEGER,
            encoding TEXT,
            n_events INTEGER NOT NULL DEFAULT 0,
            events BLOB,
            PRIMARY KEY (message_id, ordinal)
        );
        """,
    ),
    (
        4,
        """
        CREATE TABLE chat_leases (
            chat_id INTEGER PRIMARY KEY REFERENCES chats(id) ON DELETE CASCADE,
            owner TEXT NOT NULL,
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            heartbeat_at REAL NOT NULL
        );
        CREATE INDEX chat_leases_by_owner ON chat_leases(owner);
        """,
    ),
    (
        5,
        """
        ALTER TABLE chats ADD COLUMN mode TEXT NOT NULL DEFAULT 'chat' CHECK (mode IN ('chat', 'completion'));
        """,
    ),
    (
        6,
        """
        CREATE TABLE comparisons (
            id INTEGER PRIMARY KEY,
            chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            after_messages INTEGER NOT NULL,
            prompt TEXT NOT NULL,
            mode TEXT NOT NULL DEFAULT 'chat' CHECK (mode IN ('chat', 'completion')),
            kept INTEGER,
            parting TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE comparison_columns (
            comparison_id INTEGER NOT NULL REFERENCES comparisons(id) ON DELETE CASCADE,
            column_index INTEGER NOT NULL,
            label TEXT NOT NULL,
            text TEXT NOT NULL,
            reply TEXT NOT NULL,
            PRIMARY KEY (comparison_id, column_index)
        );
        CREATE INDEX comparisons_by_chat ON comparisons(chat_id, id);
        """,
    ),
)
"""(version, SQL) in order; a file at version N gets every migration above N, each in its own transaction."""

CURRENT_VERSION = MIGRATIONS[-1][0]


def read_version(conn: sqlite3.Connection) -> int:
    """The schema version of an open database (0 for an empty file)."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" not in tables:
        if tables:
            raise StoreCorruptError(
                "The chat database file holds other tables: it is not a tokendial database.",
                "Move it aside and start with an empty database, or point data_dir elsewhere.",
            )
        return 0
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    if row is None or not isinstance(row[0], int):
        raise StoreCorruptError(
            "The chat database has no valid schema version.",
            "Move it aside and start with an empty database.",
        )
    return int(row[0])


def _statements(sql: str) -> list[str]:
    """The statements of a migration script, one by one (so they run inside our own transaction)."""
    statements: list[str] = []
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if not pending.strip(" \n;"):
            pending = ""
        elif sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip(" \n;"):
        raise ValueError(f"incomplete statement in a migration: {pending.strip()[:60]}")
    return statements


def _newer_error(version: int) -> StoreVersionError:
    return StoreVersionError(
        f"The chat database was written by a newer tokendial (schema {version}, "
        f"this version knows up to {MIGRATIONS[-1][0]}).",
        "Update tokendial, or run with an in-memory store for this session.",
    )


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database up to CURRENT_VERSION; returns the version it had before.

    Safe when several processes open the same file at once: each step re-reads the version
    inside ``BEGIN IMMEDIATE`` (the write lock), so a step another process has just applied is
    never applied twice, and a file another process is creating right now is waited for.
    ``conn`` must be in autocommit mode (isolation_level=None). Each step commits on its own,
    so an interrupted upgrade resumes where it stopped.
    """
    current = MIGRATIONS[-1][0]
    start = read_version(conn)  # a committed snapshot; versions only ever go up
    version = start
    while True:
        if version > current:
            raise _newer_error(version)
        if version == current:
            return start
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = read_version(conn)  # again, under the write lock: it may have moved on
            step = next(((v, sql) for v, sql in MIGRATIONS if v > version), None)
            if step is not None:
                if version == 0:
                    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                    conn.execute("INSERT INTO schema_version (version) VALUES (0)")
                for statement in _statements(step[1]):
                    conn.execute(statement)
                conn.execute("UPDATE schema_version SET version = ?", (step[0],))
                version = step[0]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
