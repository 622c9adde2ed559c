"""Token events: stored compactly with their candidates, bounded in size, pruned oldest first."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from settings.sampling import SamplingParams
from tui.engine.events import ReplyDone, TokenEvent
from tui.store import ChatStore, EventRetention, FingerprintKind, events_codec, fingerprint_model

Done = Callable[..., ReplyDone]
Events = Callable[..., list[TokenEvent]]


def _reply(store: ChatStore, chat_id: int, done: ReplyDone, events: list[TokenEvent]) -> int:
    store.add_user_message(chat_id, "prompt")
    reply = store.begin_assistant_message(chat_id, SamplingParams())
    store.finish_assistant_message(reply, done, events)
    return reply


def test_codec_round_trips_exactly(make_events: Events) -> None:
    events = make_events(["a", " b", "\n\n", "", "\t\u00e9", "<|im_end|>"], versions=[0, 0, 1, 1, 2, 2])
    blob = events_codec.pack_events(events, max_bytes=1 << 20)
    assert blob is not None
    assert events_codec.unpack_events(blob) == tuple(events)


def test_codec_is_compact(make_events: Events) -> None:
    events = make_events([f"tok{i % 50} " for i in range(500)], top_n=10)
    blob = events_codec.pack_events(events, max_bytes=1 << 20)
    assert blob is not None
    # 500 tokens x 10 candidates: well under the size of their repr
    assert len(blob) * 5 < len(repr(events))


def test_too_big_events_drop_candidates_then_everything(make_events: Events) -> None:
    events = make_events([f"t{i}" for i in range(200)], top_n=10)
    full = events_codec.pack_events(events, max_bytes=1 << 20)
    assert full is not None
    slim = events_codec.pack_events(events, max_bytes=len(full) - 1)
    assert slim is not None
    assert all(e.candidates == () for e in events_codec.unpack_events(slim))
    assert [e.text for e in events_codec.unpack_events(slim)] == [e.text for e in events]
    assert events_codec.pack_events(events, max_bytes=10) is None


def test_events_are_stored_and_loaded_per_reply(
    store: ChatStore, make_done: Done, make_events: Events
) -> None:
    chat_id = store.create_chat()
    events = make_events(["Hel", "lo"])
    reply = _reply(store, chat_id, make_done("Hello", n_tokens=2), events)
    assert store.load_chat(chat_id).messages[-1].has_events
    assert store.load_events(reply) == tuple(events)
    no_events = _reply(store, chat_id, make_done("Hi", n_tokens=1), [])
    assert store.load_events(no_events) is None
    assert not store.load_chat(chat_id).messages[-1].has_events


def test_events_kept_only_for_the_last_n_chats(db_path: Path, make_done: Done, make_events: Events) -> None:
    with ChatStore(db_path, retention=EventRetention(keep_chats=2)) as store:
        replies = []
        for _ in range(4):
            chat_id = store.create_chat()
            replies.append(_reply(store, chat_id, make_done("ab", n_tokens=2), make_events(["a", "b"])))
        kept = [store.load_events(r) is not None for r in replies]
        assert kept == [False, False, True, True]
        # the text and metadata of pruned replies stay
        assert store.load_chat(1).messages[-1].text == "ab"
        assert not store.load_chat(1).messages[-1].has_events


def test_kept_chats_are_exempt_from_pruning(db_path: Path, make_done: Done, make_events: Events) -> None:
    with ChatStore(db_path, retention=EventRetention(keep_chats=1)) as store:
        pinned = store.create_chat()
        store.set_keep_events(pinned, True)
        pinned_reply = _reply(store, pinned, make_done("ab", n_tokens=2), make_events(["a", "b"]))
        for _ in range(3):
            chat_id = store.create_chat()
            _reply(store, chat_id, make_done("ab", n_tokens=2), make_events(["a", "b"]))
        assert store.load_events(pinned_reply) is not None
        assert store.load_chat(pinned).keep_events


def test_total_size_is_bounded_oldest_pruned_first(
    db_path: Path, make_done: Done, make_events: Events
) -> None:
    events = make_events([f"token {i}" for i in range(300)], top_n=10)
    one = len(events_codec.pack_events(events, max_bytes=1 << 30) or b"")
    with ChatStore(db_path, retention=EventRetention(keep_chats=100, max_bytes=int(one * 2.5))) as store:
        chat_id = store.create_chat()
        replies = [_reply(store, chat_id, make_done("x", n_tokens=300), events) for _ in range(5)]
        assert [store.load_events(r) is not None for r in replies] == [False, False, False, True, True]
        assert store.events_bytes() <= one * 2.5


def test_pruned_space_goes_back_to_the_file_system(
    db_path: Path, make_done: Done, make_events: Events
) -> None:
    # varied token texts so that the blobs do not compress to nothing
    texts = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(2000)]
    with ChatStore(db_path, retention=EventRetention(keep_chats=1)) as store:
        for _ in range(3):
            _reply(store, store.create_chat(), make_done("x"), make_events(texts, top_n=10))
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = os.path.getsize(db_path)
        assert store.events_bytes() < size
        assert size < 3 * store.events_bytes()  # not three chats' worth of events


def test_unreadable_blob_is_treated_as_missing(
    store: ChatStore, make_done: Done, make_events: Events
) -> None:
    chat_id = store.create_chat()
    reply = _reply(store, chat_id, make_done("ab", n_tokens=2), make_events(["a", "b"]))
    store._db.execute("UPDATE token_events SET data = ? WHERE message_id = ?", (b"junk", reply))
    assert store.load_events(reply) is None
    exported = store.export_json(chat_id)
    assert exported["messages"][-1]["token_events"] is None


def test_fingerprint_small_file_is_full_sha256(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    data = os.urandom(3 * 1024 * 1024 + 17)
    path.write_bytes(data)
    ref = fingerprint_model(path)
    assert ref.fingerprint_kind is FingerprintKind.SHA256
    assert ref.fingerprint == hashlib.sha256(data).hexdigest()
    assert (ref.size, ref.path, ref.file_name) == (len(data), str(path.resolve()), "m.gguf")


def test_fingerprint_big_file_is_size_head_tail(tmp_path: Path) -> None:
    path = tmp_path / "big.gguf"
    mib = 1024 * 1024
    data = bytearray(os.urandom(3 * mib))
    path.write_bytes(data)
    ref = fingerprint_model(path, full_hash_limit=mib)
    assert ref.fingerprint_kind is FingerprintKind.QUICK
    expected = hashlib.sha256(f"size={len(data)};".encode() + data[:mib] + data[-mib:]).hexdigest()
    assert ref.fingerprint == expected
    # a change in the middle is not seen (documented trade-off), a change at the end is
    data[-1] ^= 0xFF
    path.write_bytes(data)
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 10**9))  # a distinct mtime, even on coarse clocks
    assert fingerprint_model(path, full_hash_limit=mib).fingerprint != ref.fingerprint


def test_fingerprint_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        fingerprint_model(tmp_path / "nope.gguf")
