"""ChatSession: the app's chat mirrored into the store, step by step, without Textual."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

from settings.sampling import SamplingParams
from tui.engine.events import ReplyDone, TokenEvent
from tui.store import ChatStore, MessageStatus, Role, StoreError, StoreLockedError
from tui.store.records import reply_done_of
from tui.store.session import ChatSession


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_chat_is_saved_step_by_step(
    store: ChatStore, make_done: Callable[..., ReplyDone], make_events: Callable[..., list[TokenEvent]]
) -> None:
    clock = Clock()
    session = ChatSession(store, clock=clock, partial_every_s=1.0)
    params = SamplingParams(temperature=0.5)
    assert store.list_chats() == []
    assert session.user_message("Hi there", params)
    assert session.chat_id is not None
    assert session.reply_started(7, params, version=2)
    assert not session.reply_progress(7, "He", 1)  # too soon
    clock.now += 1.5
    assert session.reply_progress(7, "Hello", 2)
    message = store.load_chat(session.chat_id).messages[-1]
    assert (message.text, message.status) == ("Hello", MessageStatus.INTERRUPTED)

    done = make_done("Hello!", params={2: params})
    assert session.reply_finished(7, done, make_events(["Hello", "!"]))
    chat = store.load_chat(session.chat_id)
    assert chat.title == "Hi there"
    assert [(m.role, m.text, m.status) for m in chat.messages] == [
        (Role.USER, "Hi there", MessageStatus.FINISHED),
        (Role.ASSISTANT, "Hello!", MessageStatus.FINISHED),
    ]
    assert store.load_events(chat.messages[1].id) is not None
    assert not session.reply_finished(7, done, [])  # unknown (already finished) reply

    # regenerate: the reply is taken back, a new one saved in its place
    session.truncate(1)
    session.reply_started(8, params)
    session.reply_finished(8, make_done("Hey."), [])
    assert [m.text for m in store.load_chat(session.chat_id).messages] == ["Hi there", "Hey."]

    new_params = SamplingParams(top_k=3)
    session.params_changed(new_params)
    assert store.load_chat(session.chat_id).last_params == new_params

    first = session.chat_id
    session.new_chat()
    assert session.chat_id is None
    session.params_changed(SamplingParams(top_k=9))  # nothing to save yet
    session.user_message("Second chat", params)
    assert session.chat_id != first
    assert [c.title for c in store.list_chats()] == ["Second chat", "Hi there"]

    reopened = session.open_chat(first)
    assert reopened.last_params == new_params
    assert session.chat_id == first
    session.user_message("Back again", new_params)
    assert store.load_chat(first).messages[-1].text == "Back again"


def test_a_failed_write_is_reported_once_and_saving_stops(
    db_path: Path, make_done: Callable[..., ReplyDone]
) -> None:
    errors: list[StoreError] = []
    with ChatStore(db_path, busy_timeout_s=0.05) as store:
        session = ChatSession(store, on_error=errors.append)
        params = SamplingParams()
        session.user_message("before the lock", params)
        locker = sqlite3.connect(db_path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        assert not session.reply_started(1, params)
        assert not session.reply_finished(1, make_done("x"), [])
        assert not session.user_message("during the lock", params)
        locker.execute("ROLLBACK")
        locker.close()
        assert len(errors) == 1 and isinstance(errors[0], StoreLockedError)
        assert not session.user_message("after the lock, same chat", params)  # still off for this chat
        assert [m.text for m in store.load_chat(session.chat_id or 0).messages] == ["before the lock"]
        session.new_chat()
        assert session.user_message("a new chat saves again", params)


def test_model_fingerprint_is_recorded_with_replies(
    store: ChatStore, tmp_path: Path, make_done: Callable[..., ReplyDone]
) -> None:
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF" + bytes(1000))
    session = ChatSession(store)
    session.reply_started(1, SamplingParams())  # before the fingerprint is known
    thread = session.set_model(model)
    assert thread is not None
    thread.join(10)
    session.reply_finished(1, make_done("x"), [])
    assert session.chat_id is not None
    reply = store.load_chat(session.chat_id).messages[-1].reply
    assert reply is not None and reply.model is not None
    assert reply.model.fingerprint == hashlib.sha256(model.read_bytes()).hexdigest()
    session.set_model(tmp_path / "missing.gguf", background=False)  # logged, not raised


def test_stored_reply_shows_again_as_the_same_reply_done(
    store: ChatStore, make_done: Callable[..., ReplyDone], make_events: Callable[..., list[TokenEvent]]
) -> None:
    session = ChatSession(store)
    session.user_message("q", SamplingParams())
    session.reply_started(1, SamplingParams())
    done = make_done("ab", n_tokens=2)
    events = make_events(["a", "b"])
    session.reply_finished(1, done, events)
    session.reply_started(2, SamplingParams())
    assert session.chat_id is not None
    chat = store.load_chat(session.chat_id)
    finished, interrupted = chat.messages[1], chat.messages[2]
    again = reply_done_of(finished, store.load_events(finished.id))
    assert again.stop == done.stop and again.text == done.text and again.seed == done.seed
    assert again.token_ids == tuple(e.token_id for e in events)
    assert again.params == done.params
    assert again.tokens_per_s == done.tokens_per_s
    lost = reply_done_of(interrupted)
    assert lost.stop.kind.value == "error" and "interrupted" in lost.stop.label()
