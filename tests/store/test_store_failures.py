"""A corrupt or locked database gives a typed StoreError with a way on, never a crash."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from settings.sampling import SamplingParams
from tui.engine.events import ReplyDone
from tui.store import (
    ChatStore,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    move_aside,
    open_store,
)


def _fill(path: Path) -> None:
    with ChatStore(path) as store:
        for n in range(30):
            chat_id = store.create_chat()
            store.add_user_message(chat_id, f"prompt {n} " + "x" * 3000)


def test_a_file_that_is_not_a_database(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is a text file, not SQLite\n" * 200)
    with pytest.raises(StoreCorruptError) as caught:
        ChatStore(db_path)
    error = caught.value
    assert "is damaged" in error.message and str(db_path) in error.message
    assert "Move it aside" in error.hint
    assert error.path == db_path


def test_a_malformed_database_is_found_at_open(db_path: Path) -> None:
    _fill(db_path)
    data = bytearray(db_path.read_bytes())
    assert len(data) > 8 * 4096
    # smash pages in the middle of the file (b-tree pages of the messages table), keep the header
    data[4096 * 3 : 4096 * 6] = b"\xff" * (4096 * 3)
    db_path.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError, match="damaged"):
        ChatStore(db_path)


def test_open_store_moves_a_corrupt_file_aside_and_starts_fresh(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    garbage = b"garbage" * 1000
    db_path.write_bytes(garbage)
    opened = open_store(db_path, recover_corrupt=True)
    assert isinstance(opened.problem, StoreCorruptError)
    assert opened.moved_to is not None
    assert opened.moved_to.name.startswith("chats.sqlite3.corrupt-")
    assert opened.moved_to.read_bytes() == garbage  # nothing is lost
    assert opened.store.is_persistent
    chat_id = opened.store.create_chat()
    opened.store.add_user_message(chat_id, "fresh start")
    opened.store.close()
    with ChatStore(db_path) as store:
        assert [c.title for c in store.list_chats()] == ["fresh start"]


def test_open_store_without_recovery_falls_back_to_memory(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"garbage" * 1000)
    opened = open_store(db_path)
    assert isinstance(opened.problem, StoreCorruptError)
    assert opened.moved_to is None
    assert not opened.store.is_persistent
    opened.store.create_chat()  # usable
    assert db_path.read_bytes() == b"garbage" * 1000  # untouched


def test_move_aside_takes_wal_and_shm_along(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).write_text(suffix or "main")
    first = move_aside(path)
    assert not path.exists()
    assert first.read_text() == "main"
    assert first.with_name(first.name + "-wal").read_text() == "-wal"
    path.write_text("again")
    second = move_aside(path)  # same second: a distinct name, nothing overwritten
    assert second != first and second.read_text() == "again" and first.read_text() == "main"


@pytest.fixture
def locker(db_path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the write lock, as a second process would."""
    ChatStore(db_path).close()
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    yield conn
    conn.execute("ROLLBACK")
    conn.close()


def test_a_write_to_a_locked_database_raises_locked_error(
    db_path: Path, locker: sqlite3.Connection, make_done: Callable[..., ReplyDone]
) -> None:
    with ChatStore(db_path, busy_timeout_s=0.05) as store:
        with pytest.raises(StoreLockedError) as caught:
            store.create_chat()
        assert "locked by another process" in caught.value.message
        assert "in-memory" in caught.value.hint
        locker.execute("ROLLBACK")
        chat_id = store.create_chat()  # works again once the lock is gone
        store.add_user_message(chat_id, "after the lock")
        locker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreLockedError):
            store.begin_assistant_message(chat_id, SamplingParams())
        assert not store._db.in_transaction  # rolled back, usable
        locker.execute("ROLLBACK")
        reply = store.begin_assistant_message(chat_id, SamplingParams())
        store.finish_assistant_message(reply, make_done("ok"))
        locker.execute("BEGIN EXCLUSIVE")


def test_opening_a_locked_rollback_journal_database(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("BEGIN EXCLUSIVE")  # no WAL yet: nobody else can even read
    try:
        with pytest.raises(StoreLockedError):
            ChatStore(path, busy_timeout_s=0.05)
        opened = open_store(path, busy_timeout_s=0.05)
        assert isinstance(opened.problem, StoreLockedError)
        assert not opened.store.is_persistent
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_unwritable_data_dir_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="Cannot create the data directory"):
        ChatStore(blocker / "sub" / "chats.sqlite3")
    directory = tmp_path / "dir.sqlite3"
    directory.mkdir()
    with pytest.raises(StoreError, match="is a directory"):
        ChatStore(directory)
    opened = open_store(blocker / "sub" / "chats.sqlite3")
    assert opened.problem is not None and not opened.store.is_persistent
