"""ChatStore basics: chats, messages, replies, titles, search, params, files on disk."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from settings.sampling import SamplingMode, SamplingParams
from tui.engine.events import ReplyDone, StopKind, StopReason, TokenEvent
from tui.store import ChatStore, MessageStatus, NotFoundError, Role, StoreCorruptError, StoreError
from tui.store.schema import CURRENT_VERSION


def test_new_database_uses_wal_foreign_keys_and_current_schema(db_path: Path, store: ChatStore) -> None:
    assert db_path.exists()
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == CURRENT_VERSION
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    conn.close()
    assert store._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_full_reply_is_stored_with_all_its_facts(
    store: ChatStore, make_done: Callable[..., ReplyDone]
) -> None:
    chat_id = store.create_chat()
    store.add_user_message(chat_id, "What is 2+2?")
    v0 = SamplingParams(temperature=0.7)
    v1 = SamplingParams(temperature=1.4)
    reply_id = store.begin_assistant_message(chat_id, v0)
    done = make_done("Four.", params={0: v0, 1: v1}, seed=77)
    store.finish_assistant_message(reply_id, done)

    chat = store.load_chat(chat_id)
    user, assistant = chat.messages
    assert (user.role, user.text, user.status, user.reply) == (
        Role.USER,
        "What is 2+2?",
        MessageStatus.FINISHED,
        None,
    )
    assert assistant.role is Role.ASSISTANT
    assert assistant.text == "Four."
    assert assistant.status is MessageStatus.FINISHED
    reply = assistant.reply
    assert reply is not None
    assert reply.params == {0: v0, 1: v1}
    assert reply.seed == 77
    assert reply.stop == done.stop
    assert reply.stop_label == "end of sequence <|im_end|>"
    assert reply.token_count == 3
    assert reply.tokens_per_s == pytest.approx(done.tokens_per_s)
    assert (reply.prompt_tokens, reply.prompt_evaluated) == (27, 20)
    assert (reply.prompt_ms, reply.first_token_ms, reply.decode_ms) == (41.5, 55.25, 123.0)
    assert reply.finished_at is not None
    assert assistant.created_at <= reply.finished_at
    # the last version used is what the next reply starts from
    assert chat.last_params == v1


def test_begin_saves_an_interrupted_reply_that_partial_updates_fill(store: ChatStore) -> None:
    chat_id = store.create_chat()
    store.add_user_message(chat_id, "Tell me a story")
    params = SamplingParams(mode=SamplingMode.GREEDY)
    reply_id = store.begin_assistant_message(chat_id, params, params_version=3)
    message = store.load_chat(chat_id).messages[-1]
    assert message.status is MessageStatus.INTERRUPTED
    assert message.text == ""
    assert message.reply is not None and message.reply.params == {3: params}
    assert message.reply.stop is None

    store.update_assistant_text(reply_id, "Once upon", token_count=2)
    message = store.load_chat(chat_id).messages[-1]
    assert (message.text, message.status, message.reply and message.reply.token_count) == (
        "Once upon",
        MessageStatus.INTERRUPTED,
        2,
    )


def test_cancelled_reply_is_finished_with_its_stop_reason(
    store: ChatStore, make_done: Callable[..., ReplyDone]
) -> None:
    chat_id = store.create_chat()
    store.add_user_message(chat_id, "hi")
    reply_id = store.begin_assistant_message(chat_id, SamplingParams())
    stop = StopReason(StopKind.CANCELLED, generated=1)
    store.finish_assistant_message(reply_id, make_done("Hel", stop=stop, n_tokens=1))
    message = store.load_chat(chat_id).messages[-1]
    assert message.status is MessageStatus.FINISHED
    assert message.reply is not None and message.reply.stop == stop
    assert message.reply.stop_label == "cancelled after 1 tokens"
    assert message.reply.tokens_per_s == 0.0


def test_title_follows_first_prompt_until_renamed(store: ChatStore) -> None:
    chat_id = store.create_chat()
    assert store.load_chat(chat_id).title == "New chat"
    store.add_user_message(chat_id, "\n  Explain   top-p sampling\nin detail please")
    assert store.load_chat(chat_id).title == "Explain top-p sampling"
    store.add_user_message(chat_id, "second prompt does not rename")
    assert store.load_chat(chat_id).title == "Explain top-p sampling"

    long_id = store.create_chat()
    store.add_user_message(long_id, "word " * 40)
    title = store.load_chat(long_id).title
    assert len(title) <= 60 and title.endswith("…")

    store.rename_chat(chat_id, "  Sampling   notes ")
    chat = store.load_chat(chat_id)
    assert (chat.title, chat.title_is_auto) == ("Sampling notes", False)
    with pytest.raises(StoreError, match="cannot be empty"):
        store.rename_chat(chat_id, "   ")

    named = store.create_chat(title="Mine")
    store.add_user_message(named, "not the title")
    assert store.load_chat(named).title == "Mine"


def test_list_and_search(store: ChatStore, make_done: Callable[..., ReplyDone]) -> None:
    first = store.create_chat()
    store.add_user_message(first, "How do penguins sleep?")
    reply = store.begin_assistant_message(first, SamplingParams())
    store.finish_assistant_message(reply, make_done("Penguins nap standing up, 100% of the_time."))
    second = store.create_chat()
    store.add_user_message(second, "Write a haiku about SQLite")

    listed = store.list_chats()
    assert [c.id for c in listed] == [second, first]  # most recent first
    assert listed[1].message_count == 2
    assert listed[1].snippet == "How do penguins sleep?"

    assert [c.id for c in store.list_chats(search="HAIKU")] == [second]  # title, any case
    hits = store.list_chats(search="standing")  # reply text
    assert [c.id for c in hits] == [first]
    assert "standing" in hits[0].snippet
    assert [c.id for c in store.list_chats(search="100%")] == [first]  # LIKE wildcards are literal
    assert store.list_chats(search="0%_") == []
    assert store.list_chats(search="nothing like this") == []
    assert [c.id for c in store.list_chats(search="  ")] == [second, first]
    assert len(store.list_chats(limit=1)) == 1


def test_delete_removes_messages_replies_and_events(
    store: ChatStore, make_done: Callable[..., ReplyDone], make_events: Callable[..., list[TokenEvent]]
) -> None:
    chat_id = store.create_chat()
    store.add_user_message(chat_id, "hi")
    reply = store.begin_assistant_message(chat_id, SamplingParams())
    store.finish_assistant_message(reply, make_done("Hello"), make_events(["Hel", "lo"]))
    store.delete_chat(chat_id)
    assert store.list_chats() == []
    with pytest.raises(NotFoundError):
        store.load_chat(chat_id)
    with pytest.raises(NotFoundError):
        store.delete_chat(chat_id)
    for table in ("messages", "replies", "token_events"):
        assert store._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0


def test_unknown_ids_raise_not_found(store: ChatStore, make_done: Callable[..., ReplyDone]) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        store.add_user_message(999, "hi")
    with pytest.raises(NotFoundError):
        store.finish_assistant_message(999, make_done("x"))
    with pytest.raises(NotFoundError):
        store.update_assistant_text(999, "x")


def test_truncate_and_last_params(store: ChatStore, make_done: Callable[..., ReplyDone]) -> None:
    chat_id = store.create_chat(params=SamplingParams(top_k=5))
    assert store.load_chat(chat_id).last_params == SamplingParams(top_k=5)
    store.add_user_message(chat_id, "one")
    reply = store.begin_assistant_message(chat_id, SamplingParams())
    store.finish_assistant_message(reply, make_done("uno"))
    store.truncate_chat(chat_id, 1)  # regenerate: drop the reply
    assert [m.text for m in store.load_chat(chat_id).messages] == ["one"]
    reply = store.begin_assistant_message(chat_id, SamplingParams(seed=5))
    assert store.load_chat(chat_id).messages[-1].position == 1
    store.set_last_params(chat_id, SamplingParams(top_p=0.5))
    assert store.load_chat(chat_id).last_params == SamplingParams(top_p=0.5)


def test_engine_messages_skip_empty_interrupted_replies(store: ChatStore) -> None:
    chat_id = store.create_chat()
    store.add_user_message(chat_id, "hi")
    store.begin_assistant_message(chat_id, SamplingParams())
    assert [(m.role, m.content) for m in store.load_chat(chat_id).engine_messages()] == [("user", "hi")]


def test_params_from_an_older_or_newer_version_load_leniently(store: ChatStore) -> None:
    chat_id = store.create_chat()
    store._db.execute(
        "UPDATE chats SET last_params = ? WHERE id = ?",
        ('{"temperature": 0.3, "top_k": -5, "removed_field": 1}', chat_id),
    )
    assert store.load_chat(chat_id).last_params == SamplingParams(temperature=0.3)


def test_in_memory_store_works_and_is_not_persistent() -> None:
    with ChatStore.in_memory() as memory:
        assert not memory.is_persistent
        chat_id = memory.create_chat()
        memory.add_user_message(chat_id, "hi")
        assert memory.list_chats()[0].title == "hi"


def test_closed_store_raises_store_error(db_path: Path) -> None:
    closed = ChatStore(db_path)
    closed.close()
    closed.close()
    with pytest.raises(StoreError, match="closed"):
        closed.list_chats()


def test_reopening_keeps_everything(db_path: Path, make_done: Callable[..., ReplyDone]) -> None:
    with ChatStore(db_path) as first:
        chat_id = first.create_chat()
        first.add_user_message(chat_id, "persist me")
        reply = first.begin_assistant_message(chat_id, SamplingParams(top_k=3))
        first.finish_assistant_message(reply, make_done("done", params={0: SamplingParams(top_k=3)}))
        before = first.load_chat(chat_id)
    with ChatStore(db_path) as second:
        assert second.load_chat(chat_id) == before
        assert before.last_params == SamplingParams(top_k=3)


def test_late_partial_update_does_not_overwrite_a_finished_reply(
    store: ChatStore, make_done: Callable[..., ReplyDone]
) -> None:
    chat_id = store.create_chat()
    reply = store.begin_assistant_message(chat_id, SamplingParams())
    store.finish_assistant_message(reply, make_done("final text"))
    store.update_assistant_text(reply, "stale partial", token_count=1)
    message = store.load_chat(chat_id).messages[-1]
    assert (message.text, message.reply and message.reply.token_count) == ("final text", 3)


def test_undecodable_stored_values_are_a_store_error(
    store: ChatStore, make_done: Callable[..., ReplyDone]
) -> None:
    chat_id = store.create_chat()
    reply = store.begin_assistant_message(chat_id, SamplingParams())
    store.finish_assistant_message(reply, make_done("x"))
    store._db.execute("UPDATE replies SET stop = '{broken' WHERE message_id = ?", (reply,))
    with pytest.raises(StoreCorruptError, match="could not be read while loading a chat"):
        store.load_chat(chat_id)
    assert [c.id for c in store.list_chats()] == [chat_id]  # the rest still works
