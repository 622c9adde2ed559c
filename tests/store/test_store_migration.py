"""Schema migrations: a version-1 database made by hand opens, upgrades and keeps its chats."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from settings.sampling import SamplingParams
from tui.engine.events import ReplyDone
from tui.store import ChatStore, MessageStatus, Role, StoreCorruptError, StoreError, StoreVersionError
from tui.store.schema import CURRENT_VERSION, MIGRATIONS

# Written out here on purpose: the test must not depend on the migration code it checks.
V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) VALUES (1);
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
INSERT INTO chats VALUES (1, 'Old chat', '2025-01-02T03:04:05+00:00', '2025-01-02T03:05:00+00:00');
INSERT INTO chats VALUES (2, 'Older chat', '2024-06-01T00:00:00+00:00', '2024-06-01T00:00:00+00:00');
INSERT INTO messages VALUES (1, 1, 0, 'user', 'hello from v1', '2025-01-02T03:04:05+00:00');
INSERT INTO messages VALUES (2, 1, 1, 'assistant', 'hi, I am old', '2025-01-02T03:05:00+00:00');
INSERT INTO messages VALUES (3, 2, 0, 'user', 'second chat', '2024-06-01T00:00:00+00:00');
"""


def make_v1(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.close()


def test_migrations_are_ordered_and_end_at_current() -> None:
    versions = [v for v, _ in MIGRATIONS]
    assert versions == sorted(versions) == list(range(1, len(versions) + 1))
    assert CURRENT_VERSION == versions[-1] >= 2


def test_v1_database_upgrades_and_keeps_its_chats(db_path: Path, make_done: Callable[..., ReplyDone]) -> None:
    make_v1(db_path)
    with ChatStore(db_path) as store:
        assert store._db.execute("SELECT version FROM schema_version").fetchone()[0] == CURRENT_VERSION
        assert [(c.id, c.title) for c in store.list_chats()] == [(1, "Old chat"), (2, "Older chat")]
        chat = store.load_chat(1)
        assert chat.title_is_auto is False  # a v1 title stays as it was
        assert chat.last_params is None
        assert [(m.role, m.text, m.status, m.reply) for m in chat.messages] == [
            (Role.USER, "hello from v1", MessageStatus.FINISHED, None),
            (Role.ASSISTANT, "hi, I am old", MessageStatus.FINISHED, None),
        ]
        assert str(chat.created_at) == "2025-01-02 03:04:05+00:00"

        # the upgraded chat takes new replies with full metadata
        store.add_user_message(1, "and now?")
        reply = store.begin_assistant_message(1, SamplingParams(top_k=7))
        store.finish_assistant_message(
            reply, make_done("now with params", params={0: SamplingParams(top_k=7)})
        )
        chat = store.load_chat(1)
        assert chat.title == "Old chat"
        assert chat.messages[-1].reply is not None
        assert chat.messages[-1].reply.params == {0: SamplingParams(top_k=7)}
        assert chat.last_params == SamplingParams(top_k=7)
        store.delete_chat(2)  # foreign keys cascade on the migrated tables too
        assert store._db.execute("SELECT COUNT(*) FROM messages WHERE chat_id = 2").fetchone()[0] == 0

    # opening again does not re-run anything
    with ChatStore(db_path) as store:
        assert len(store.load_chat(1).messages) == 4


def test_failed_migration_rolls_back_and_leaves_v1_intact(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_v1(db_path)
    import tui.store.schema as schema

    broken = ((1, MIGRATIONS[0][1]), (2, "ALTER TABLE chats ADD COLUMN x TEXT; THIS IS NOT SQL;"))
    monkeypatch.setattr(schema, "MIGRATIONS", broken)
    with pytest.raises(StoreError, match="syntax error"):  # a StoreError, not a raw sqlite3 error
        ChatStore(db_path)
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == 1
    columns = [row[1] for row in conn.execute("PRAGMA table_info(chats)")]
    assert "x" not in columns
    conn.close()
    monkeypatch.undo()
    with ChatStore(db_path) as store:
        assert len(store.list_chats()) == 2


def test_database_from_a_newer_version_is_refused_clearly(db_path: Path) -> None:
    with ChatStore(db_path) as store:
        store._db.execute(f"UPDATE schema_version SET version = {CURRENT_VERSION + 1}")
    with pytest.raises(StoreVersionError, match="newer tokendial") as caught:
        ChatStore(db_path)
    assert "in-memory" in caught.value.hint
    assert caught.value.path == db_path


def test_foreign_sqlite_file_is_not_taken_for_ours(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE unrelated (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreCorruptError, match="not a tokendial database"):
        ChatStore(db_path)
