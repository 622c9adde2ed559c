"""Faults while windows run: the file deleted or replaced, the data dir read-only, the disk full.

Each gets one clear message (save_state and on_error), the other window's chats stay intact, and
nothing already saved is lost. The full disk is real (a 1 MiB tmpfs) where this user may mount,
and simulated everywhere with SQLite's max_page_count; read-only is a read-only bind mount for
root (chmod does not stop root) and chmod for anyone else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from settings.sampling import SamplingParams
from tui.store import ChatStore, StoreError, open_store
from tui.store.session import ChatSession

PARAMS = SamplingParams()


def window(path: Path, errors: list[StoreError] | None = None) -> ChatSession:
    sink = errors if errors is not None else []
    return ChatSession(ChatStore(path), on_error=sink.append)


def mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


def may_mount(tmp: Path) -> bool:
    probe = tmp / "probe"
    probe.mkdir()
    if (
        os.geteuid() != 0
        or shutil.which("mount") is None
        or not mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe))
    ):
        return False
    subprocess.run(["umount", str(probe)], check=True)
    return True


def test_the_file_deleted_while_running(db_path: Path) -> None:
    errors: list[StoreError] = []
    first = window(db_path, errors)
    assert first.user_message("saved before", PARAMS)
    chat_id = first.chat_id
    for suffix in ("", "-wal", "-shm"):
        db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
    state = first.poll()
    assert (state.saved, state.label) == (False, "not saved")
    assert "was deleted or replaced" in state.reason and "a new chat goes on" in state.reason
    assert [type(e).__name__ for e in errors] == ["StoreGoneError"]  # told once
    assert not first.user_message("typed after", PARAMS)  # not saved, and not told twice
    assert len(errors) == 1
    assert first.unsaved_chats() == [chat_id]
    assert chat_id is not None
    texts = [m["text"] for m in first.store.export_json(chat_id)["messages"]]
    assert texts == ["saved before"]  # what was saved can still be exported before quitting

    second = window(db_path)  # a window started now gets a fresh file; the first does not touch it
    assert second.save_state.saved and second.user_message("the new file", PARAMS)
    assert not first.user_message("more from the first", PARAMS)
    assert [c.title for c in second.store.list_chats()] == ["the new file"]

    first.new_chat()  # a new chat: the first window goes on in the new file, its saved chat copied in
    assert first.save_state.saved and first.unsaved_chats() == []
    assert first.user_message("saved again", PARAMS)
    titles = sorted(c.title for c in second.store.list_chats())
    assert titles == ["saved again", "saved before", "the new file"]
    first.store.close()
    second.store.close()


def test_the_file_replaced_while_running(tmp_path: Path, db_path: Path) -> None:
    first = window(db_path)
    first.user_message("mine", PARAMS)
    other = tmp_path / "other.sqlite3"
    with ChatStore(other) as store:
        store.add_user_message(store.create_chat(), "from another machine")
    os.replace(other, db_path)  # a backup restored: the old -wal/-shm go with the old file (an SQLite
    for suffix in ("-wal", "-shm"):  # rule: a main file swapped under a live -wal would take its frames)
        db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
    assert not first.user_message("after the swap", PARAMS)
    assert "deleted or replaced" in first.save_state.reason
    with ChatStore(db_path) as store:
        chats = store.list_chats()
        assert [c.title for c in chats] == ["from another machine"]
        assert [m.text for m in store.load_chat(chats[0].id).messages] == ["from another machine"]
    first.store.close()


def fill_until_full(session: ChatSession) -> int:
    """Send big prompts until a write fails; how many were saved."""
    for n in range(10_000):
        if not session.user_message(f"{n} " + "x" * 20_000, PARAMS):
            return n
    raise AssertionError("the disk never filled")


def check_full_disk(path: Path, first: ChatSession, second: ChatSession) -> None:
    errors: list[StoreError] = []
    first.on_error = errors.append
    saved_first = fill_until_full(first)
    saved_second = fill_until_full(second)
    assert saved_first > 0
    state = first.save_state
    assert (state.saved, state.label) == (False, "not saved")
    assert "Free some disk space" in state.reason
    assert len(errors) == 1 and "full" in errors[0].message
    chat_ids = [first.chat_id, second.chat_id]
    first.store.close()
    second.store.close()
    with ChatStore(path, check=True) as store:  # nothing saved is lost, nothing torn
        counts = [len(store.load_chat(c).messages) for c in chat_ids if c is not None]
        assert counts[0] == saved_first
        assert sum(counts) == saved_first + saved_second


def test_a_full_disk_simulated_with_max_page_count(db_path: Path) -> None:
    first, second = window(db_path), window(db_path)
    for session in (first, second):
        (pages,) = session.store._db.execute("PRAGMA page_count").fetchone()
        session.store._db.execute(f"PRAGMA max_page_count = {pages + 40}")
    check_full_disk(db_path, first, second)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only: elsewhere the max_page_count test above stands in for it)."""
    if not may_mount(tmp_path):
        pytest.skip("mounting a tmpfs needs root; the max_page_count test covers the full disk")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    assert mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point))
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_a_really_full_disk_while_two_windows_write(tiny_disk: Path) -> None:
    path = tiny_disk / "data" / "chats.sqlite3"
    check_full_disk(path, window(path), window(path))


def modes_stop_me(tmp: Path) -> bool:
    """Whether file modes stop this process (not for root with CAP_DAC_OVERRIDE)."""
    probe = tmp / "mode-probe"
    probe.write_text("x")
    probe.chmod(0o444)
    try:
        with probe.open("a"):
            return False
    except PermissionError:
        return True
    finally:
        probe.chmod(0o644)


def test_the_data_dir_made_read_only(tmp_path: Path, db_path: Path) -> None:
    first = window(db_path)
    assert first.user_message("before", PARAMS)
    by_mount = not modes_stop_me(tmp_path)
    if by_mount:  # root ignores modes: a read-only bind mount is the read-only data dir
        if not may_mount(tmp_path):
            pytest.skip("root without mount: cannot make a directory read-only for root")
        read_only = tmp_path / "ro"
        read_only.mkdir()
        assert mount("--bind", str(db_path.parent), str(read_only))
        assert mount("-o", "remount,ro,bind", str(read_only))
        seen = read_only / db_path.name
    else:
        db_path.parent.chmod(0o555)
        db_path.chmod(0o444)
        seen = db_path
    try:
        opened = open_store(seen)  # a window started now
        assert not opened.store.is_persistent
        assert opened.problem is not None and "Cannot write the chat database" in opened.problem.message
        assert "writable" in opened.problem.hint
        opened.store.close()
        assert first.user_message("the open window still saves", PARAMS)  # its file stays open
    finally:
        if by_mount:
            subprocess.run(["umount", "-l", str(tmp_path / "ro")], check=True)
        else:
            db_path.parent.chmod(0o755)
            db_path.chmod(0o644)
    first.store.close()
    with ChatStore(db_path) as store:
        (chat,) = store.list_chats()
        assert chat.message_count == 2
