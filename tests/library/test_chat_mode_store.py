"""A chat's mode (chat or text completion) is stored, survives reopening, export and import."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tui.store import ChatStore, open_store
from tui.store.schema import migrate


def test_mode_is_stored_and_exported(tmp_path: Path) -> None:
    path = tmp_path / "chats.db"
    opened = open_store(path)
    store = opened.store
    chat = store.create_chat("dessert")
    assert store.load_chat(chat).mode == "chat"
    store.set_chat_mode(chat, "completion")
    store.add_user_message(chat, "My favourite dessert is a piece of")
    store.close()
    again = open_store(path).store
    assert again.load_chat(chat).mode == "completion"
    exported = again.export_json(chat)
    assert exported["chat"]["mode"] == "completion"
    copy = again.import_json(exported)
    assert again.load_chat(copy).mode == "completion"
    with pytest.raises(ValueError, match="chat mode must be one of chat, completion"):
        again.set_chat_mode(chat, "poetry")
    again.close()


def test_an_older_database_gets_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    from tui.store import schema

    saved = schema.MIGRATIONS
    schema.MIGRATIONS = saved[:-1]  # every step before the mode column
    try:
        migrate(conn)
    finally:
        schema.MIGRATIONS = saved
    conn.execute(
        "INSERT INTO chats (title, created_at, updated_at) VALUES ('old', '2026-01-01', '2026-01-01')"
    )
    conn.close()
    store = open_store(path).store
    [summary] = store.list_chats()
    assert store.load_chat(summary.id).mode == "chat"
    store.close()


def test_in_memory_store_too() -> None:
    store = ChatStore.in_memory()
    chat = store.create_chat("x")
    store.set_chat_mode(chat, "completion")
    assert store.load_chat(chat).mode == "completion"


def test_the_session_writes_the_mode(tmp_path: Path) -> None:
    from settings.sampling import SamplingParams
    from tui.store.session import ChatSession

    store = open_store(tmp_path / "chats.db").store
    session = ChatSession(store)
    session.mode_changed("completion")  # before the chat is stored: kept for its creation
    session.user_message("Once upon a time", SamplingParams())
    assert session.chat_id is not None
    assert store.load_chat(session.chat_id).mode == "completion"
    session.mode_changed("chat")
    assert store.load_chat(session.chat_id).mode == "chat"
    chat_id = session.chat_id
    session.new_chat()
    session.open_chat(chat_id)
    assert session.mode == "chat"
    store.close()
