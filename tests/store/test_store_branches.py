"""Branch siblings in the store: schema v3, saved with their reply, exported, imported, migrated from v2."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from settings.sampling import SamplingParams
from tui.engine.events import ReplyDone, StopKind, StopReason, TokenEvent
from tui.store import ChatStore, ImportFormatError, StoredSibling, StoreError
from tui.store.records import stored_reply_of
from tui.store.schema import CURRENT_VERSION

Done = Callable[..., ReplyDone]
Events = Callable[..., list[TokenEvent]]

# Version 2 written out by hand (the test must not depend on the migrations it checks).
V2_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) VALUES (2);
CREATE TABLE chats (
    id INTEGER PRIMARY KEY, title TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    title_is_auto INTEGER NOT NULL DEFAULT 0, last_params TEXT, keep_events INTEGER NOT NULL DEFAULT 0,
    touched_at TEXT NOT NULL DEFAULT ''
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    text TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'finished' CHECK (status IN ('finished', 'interrupted')),
    UNIQUE (chat_id, position)
);
CREATE INDEX chats_by_update ON chats(updated_at);
CREATE TABLE replies (
    message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    params TEXT NOT NULL, model TEXT, seed INTEGER, stop_kind TEXT, stop_label TEXT, stop TEXT,
    token_count INTEGER NOT NULL DEFAULT 0, tokens_per_s REAL, prompt_tokens INTEGER,
    prompt_evaluated INTEGER, prompt_ms REAL, first_token_ms REAL, decode_ms REAL, finished_at TEXT
);
CREATE TABLE token_events (
    message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    encoding TEXT NOT NULL, n_events INTEGER NOT NULL, data BLOB NOT NULL, stored_at TEXT NOT NULL
);
CREATE INDEX chats_by_touch ON chats(touched_at);
INSERT INTO chats VALUES (1, 'A v2 chat', '2026-01-02T03:04:05+00:00', '2026-01-02T03:05:00+00:00',
    1, '{"temperature": 0.5}', 0, '2026-01-02T03:05:00+00:00');
INSERT INTO messages VALUES (1, 1, 0, 'user', 'hello from v2', '2026-01-02T03:04:05+00:00', 'finished');
INSERT INTO messages VALUES (2, 1, 1, 'assistant', 'hi from v2', '2026-01-02T03:05:00+00:00', 'finished');
INSERT INTO replies (message_id, params, seed, stop_kind, stop_label, token_count)
    VALUES (2, '{"0": {"temperature": 0.5}}', 9, 'eos', 'end of sequence', 3);
"""


def _sibling(make_done: Done, make_events: Events, text: str, ordinal: int, at: int | None) -> StoredSibling:
    done = make_done(text, params={0: SamplingParams(temperature=0.9, seed=5)}, seed=5)
    return StoredSibling(
        ordinal=ordinal,
        text=text,
        reply=stored_reply_of(done),
        branched_at=at,
        events=tuple(make_events(["a", "b", text])),
    )


@pytest.fixture
def branched_chat(store: ChatStore, make_done: Done, make_events: Events) -> tuple[int, int]:
    """A chat whose reply has three continuations: the one shown is the second (branched at token 1)."""
    chat_id = store.create_chat()
    store.add_user_message(chat_id, "Pick a fruit")
    message_id = store.begin_assistant_message(chat_id, SamplingParams(temperature=0.9, seed=5))
    store.finish_assistant_message(message_id, make_done("a pear"), make_events(["a", " pear"]))
    store.set_siblings(
        message_id,
        1,
        1,
        [
            _sibling(make_done, make_events, "an apple", 0, None),
            _sibling(make_done, make_events, "a plum", 2, 1),
        ],
    )
    return chat_id, message_id


def test_siblings_are_saved_with_their_reply_and_load_in_order(
    store: ChatStore, branched_chat: tuple[int, int], make_done: Done, make_events: Events
) -> None:
    chat_id, message_id = branched_chat
    message = store.load_chat(chat_id).messages[-1]
    assert (message.sibling_ordinal, message.sibling_count, message.branched_at) == (1, 3, 1)
    assert store.load_chat(chat_id).messages[0].sibling_count == 1
    siblings = store.load_siblings(message_id)
    assert [(s.ordinal, s.text, s.branched_at) for s in siblings] == [(0, "an apple", None), (2, "a plum", 1)]
    assert siblings[1].events == tuple(make_events(["a", "b", "a plum"]))
    assert siblings[0].reply.seed == 5 and siblings[0].reply.stop is not None
    done = siblings[1].reply_done()
    assert done.text == "a plum" and done.stop.kind is StopKind.EOS and done.seed == 5
    # Saving again replaces them; a duplicate place is refused; deleting the message drops them.
    store.set_siblings(message_id, 0, None, [_sibling(make_done, make_events, "a fig", 1, 0)])
    assert [s.text for s in store.load_siblings(message_id)] == ["a fig"]
    with pytest.raises(StoreError):
        store.set_siblings(message_id, 1, None, [_sibling(make_done, make_events, "x", 1, 0)])
    store.truncate_chat(chat_id, 1)
    assert store.load_siblings(message_id) == []
    assert store._db.execute("SELECT COUNT(*) FROM reply_siblings").fetchone()[0] == 0


def test_json_export_round_trips_the_siblings(
    store: ChatStore, branched_chat: tuple[int, int], tmp_path: Path
) -> None:
    chat_id, message_id = branched_chat
    export = store.export_json(chat_id)
    assert export["version"] == 3
    reply = export["messages"][-1]
    assert reply["sibling_ordinal"] == 1 and reply["branched_at"] == 1
    assert [s["text"] for s in reply["siblings"]] == ["an apple", "a plum"]
    assert reply["siblings"][1]["token_events"]["rows"][2][2] == "a plum"
    with ChatStore(tmp_path / "other.sqlite3") as other:
        new_id = other.import_json(json.dumps(export))
        message = other.load_chat(new_id).messages[-1]
        assert (message.sibling_ordinal, message.sibling_count, message.branched_at) == (1, 3, 1)
        assert other.load_siblings(message.id) == store.load_siblings(message_id)
        again = other.export_json(new_id)
    for data in (export, again):
        del data["exported_at"]
    assert again == export
    # Without events, the siblings are still exported (their token events left out).
    light = store.export_json(chat_id, include_events=False)["messages"][-1]["siblings"]
    assert [s["token_events"] for s in light] == [None, None]


def test_version_1_exports_still_import_and_bad_siblings_are_refused(
    store: ChatStore, branched_chat: tuple[int, int]
) -> None:
    chat_id, _ = branched_chat
    export = store.export_json(chat_id)
    old = json.loads(json.dumps(export))
    old["version"] = 1
    for message in old["messages"]:
        for key in ("sibling_ordinal", "branched_at", "siblings"):
            del message[key]
    imported = store.load_chat(store.import_json(old)).messages[-1]
    assert imported.text == "a pear" and imported.sibling_count == 1
    clash = json.loads(json.dumps(export))
    clash["messages"][-1]["siblings"][0]["ordinal"] = 1  # the shown reply's place
    with pytest.raises(ImportFormatError, match="own ordinal"):
        store.import_json(clash)


def test_markdown_shows_the_shown_branch_and_notes_the_count(
    store: ChatStore, branched_chat: tuple[int, int]
) -> None:
    chat_id, _ = branched_chat
    text = store.export_markdown(chat_id)
    assert "a pear" in text and "an apple" not in text and "a plum" not in text
    assert (
        "branch 2 of 3 shown (branched at token #1); the other 2 continuations are in the JSON export" in text
    )


def test_a_v2_database_upgrades_to_current_and_takes_branches(
    db_path: Path, make_done: Done, make_events: Events
) -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path)
    conn.executescript(V2_SCHEMA)
    conn.close()
    with ChatStore(db_path) as store:
        assert store._db.execute("SELECT version FROM schema_version").fetchone()[0] == CURRENT_VERSION >= 3
        chat = store.load_chat(1)
        assert [m.text for m in chat.messages] == ["hello from v2", "hi from v2"]
        reply = chat.messages[1]
        assert (reply.sibling_ordinal, reply.sibling_count, reply.branched_at) == (0, 1, None)
        assert reply.reply is not None and reply.reply.seed == 9
        assert store.load_siblings(reply.id) == []
        store.set_siblings(reply.id, 0, None, [_sibling(make_done, make_events, "hello again", 1, 0)])
    with ChatStore(db_path) as store:  # and it stays upgraded
        assert store.load_chat(1).messages[1].sibling_count == 2
        assert "branch 1 of 2 shown; the other one is in the JSON export" in store.export_markdown(1)


def test_sibling_events_are_pruned_with_the_chat(db_path: Path, make_done: Done, make_events: Events) -> None:
    from tui.store import EventRetention

    with ChatStore(db_path, retention=EventRetention(keep_chats=1)) as store:
        chat_id = store.create_chat()
        store.add_user_message(chat_id, "q")
        message_id = store.begin_assistant_message(chat_id, SamplingParams())
        store.finish_assistant_message(message_id, make_done("r"), make_events(["r"]))
        store.set_siblings(message_id, 0, None, [_sibling(make_done, make_events, "s", 1, 0)])
        later = store.create_chat()
        store.add_user_message(later, "q2")
        reply = store.begin_assistant_message(later, SamplingParams())
        stop = StopReason(StopKind.EOS, generated=1)
        store.finish_assistant_message(reply, make_done("r2", stop=stop), make_events(["r2"]))
        (sibling,) = store.load_siblings(message_id)
        assert sibling.text == "s" and sibling.events is None  # text and facts kept, events pruned
