"""Two windows on one chat: a chat another running tokendial writes is marked, and the mark dies with it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from settings.sampling import SamplingParams
from tui.store import ChatStore
from tui.store.errors import ChatInUseError
from tui.store.leases import LEASE_TTL_S
from tui.store.session import ChatSession, OpenMode


def two_windows(path: Path) -> tuple[ChatSession, ChatSession]:
    return ChatSession(ChatStore(path)), ChatSession(ChatStore(path))


def set_lease(path: Path, chat_id: int, pid: int, host: str, age_s: float) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "INSERT OR REPLACE INTO chat_leases (chat_id, owner, pid, host, heartbeat_at)"
        " VALUES (?, 'x', ?, ?, ?)",
        (chat_id, pid, host, time.time() - age_s),
    )
    conn.close()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_chat_written_in_one_window_is_refused_in_the_other(db_path: Path) -> None:
    first, second = two_windows(db_path)
    assert first.user_message("hello from the first window", SamplingParams())
    chat_id = first.chat_id
    assert chat_id is not None
    held = second.store.chats_open_elsewhere()
    assert list(held) == [chat_id] and held[chat_id].pid == first.store.instance.pid
    with pytest.raises(ChatInUseError) as caught:
        second.open_chat(chat_id, OpenMode.WRITE)
    assert "open in another tokendial window" in caught.value.message
    assert "copy" in caught.value.hint and "read-only" in caught.value.hint
    assert second.chat_id is None  # nothing changed
    assert first.store.chats_open_elsewhere() == {}  # its own chat is not "elsewhere"

    assert second.open_chat(chat_id).id == chat_id  # no mode (an app that cannot ask): opened, not claimed
    assert list(second.store.chats_open_elsewhere()) == [chat_id]  # still the first window's
    assert first.store.chats_open_elsewhere() == {}

    first.new_chat()  # the first window moves on: the chat is free
    assert second.store.chats_open_elsewhere() == {}
    assert second.open_chat(chat_id, OpenMode.WRITE).id == chat_id
    assert list(first.store.chats_open_elsewhere()) == [chat_id]
    first.store.close()
    second.store.close()


def test_open_a_copy_or_read_only(db_path: Path) -> None:
    first, second = two_windows(db_path)
    first.user_message("the original", SamplingParams())
    original = first.chat_id
    assert original is not None

    copy = second.open_chat(original, OpenMode.COPY)
    assert copy.id != original and copy.title == "the original (copy)"
    assert [m.text for m in copy.messages] == ["the original"]
    assert second.save_state.saved
    assert second.user_message("goes on in the copy", SamplingParams())
    assert len(first.store.load_chat(original).messages) == 1  # the original is not touched

    look = second.open_chat(original, OpenMode.READ_ONLY)
    assert look.id == original and second.read_only
    state = second.save_state
    assert (state.saved, state.label) == (False, "read-only") and "another tokendial window" in state.reason
    assert not second.user_message("typed in the read-only window", SamplingParams())
    assert [m.text for m in first.store.load_chat(original).messages] == ["the original"]
    assert list(second.store.chats_open_elsewhere()) == [original]  # the first window's; the copy was let go
    assert list(first.store.chats_open_elsewhere()) == []
    second.new_chat()
    assert second.save_state.saved
    first.store.close()
    second.store.close()


def test_a_crashed_window_leaves_no_mark(db_path: Path) -> None:
    with ChatStore(db_path) as store:
        chats = [store.create_chat(f"chat {n}") for n in range(4)]
        host = store.instance.host
        set_lease(db_path, chats[0], dead_pid(), host, age_s=1)  # same host, process gone
        set_lease(db_path, chats[1], 1, "other-host", age_s=LEASE_TTL_S + 1)  # not heard from
        set_lease(db_path, chats[2], 1, "other-host", age_s=1)  # alive elsewhere
        assert list(store.chats_open_elsewhere()) == [chats[2]]
        assert store.claim_chat(chats[0]) is None  # a stale mark is taken over
        holder = store.claim_chat(chats[2])
        assert holder is not None and holder.host == "other-host"


def test_the_heartbeat_keeps_a_lease_fresh_and_close_drops_it(db_path: Path) -> None:
    store = ChatStore(db_path)
    chat_id = store.create_chat()
    assert store.claim_chat(chat_id) is None
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE chat_leases SET heartbeat_at = heartbeat_at - 20")
    conn.commit()
    before = conn.execute("SELECT heartbeat_at FROM chat_leases").fetchone()[0]
    assert store.renew_leases() == 1
    assert conn.execute("SELECT heartbeat_at FROM chat_leases").fetchone()[0] > before + 19
    store.close()
    assert conn.execute("SELECT COUNT(*) FROM chat_leases").fetchone()[0] == 0
    conn.close()


def test_deleting_a_chat_drops_its_lease(db_path: Path) -> None:
    first, second = two_windows(db_path)
    first.user_message("short lived", SamplingParams())
    assert first.chat_id is not None
    second.store.delete_chat(first.chat_id)
    assert second.store.chats_open_elsewhere() == {}
    assert not first.reply_started(1, SamplingParams())  # the chat is gone: not saved, no crash
    assert first.save_state.saved  # a deleted chat is not a failing database
    assert [c.id for c in second.store.list_chats()] == []
    first.store.close()
    second.store.close()
