"""Two or three windows streaming replies into one chat database at once: nothing is dropped.

Real processes (stream_writer.py) go through ChatSession as the app does (prompts, partial saves,
finished replies with token events, branch siblings) while another process keeps taking the write
lock for longer than their busy timeout. The counts in the file must equal what each one sent.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tui.store import ChatStore

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def spawn(script: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / script), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def counts_in_file(path: Path, chat_id: int) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:

        def one(sql: str) -> int:
            return int(conn.execute(sql, (chat_id,)).fetchone()[0])

        return {
            "messages": one("SELECT COUNT(*) FROM messages WHERE chat_id = ?"),
            "replies": one(
                "SELECT COUNT(*) FROM replies r JOIN messages m ON m.id = r.message_id"
                " WHERE m.chat_id = ? AND m.status = 'finished' AND r.stop IS NOT NULL"
            ),
            "siblings": one(
                "SELECT COUNT(*) FROM reply_siblings s JOIN messages m ON m.id = s.message_id"
                " WHERE m.chat_id = ?"
            ),
            "events": one(
                "SELECT COUNT(*) FROM token_events e JOIN messages m ON m.id = e.message_id"
                " WHERE m.chat_id = ?"
            ),
        }
    finally:
        conn.close()


def report_of(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    last = out.strip().splitlines()[-1]
    report: dict[str, Any] = json.loads(last)
    return report


@pytest.fixture
def lock_holder(tmp_path: Path) -> Iterator[Path]:
    """A database, and another process holding its write lock 0.3 s out of every 0.4 s.

    The gaps (0.1 s) are shorter than any writer's run (its streaming alone sleeps 0.3 s), so every
    writer meets a hold longer than its 0.1 s busy timeout, however fast the machine is."""
    path = tmp_path / "data" / "chats.sqlite3"
    ChatStore(path).close()
    holder = spawn("lock_holder.py", path, 0.3, 0.1)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "HELD"
    yield path
    holder.terminate()
    holder.wait(timeout=10)


def test_three_windows_streaming_at_once_keep_every_message(lock_holder: Path) -> None:
    path = lock_holder
    writers = [spawn("stream_writer.py", path, name, 2, 3) for name in ("alpha", "beta", "gamma")]
    reports = [report_of(w) for w in writers]
    retries = 0
    for report in reports:
        assert report["errors"] == []
        retries += report["retries"]
        for chat_id, sent in report["sent"].items():
            assert counts_in_file(path, int(chat_id)) == sent, f"chat {chat_id}"
    assert sum(len(r["sent"]) for r in reports) == 6
    assert retries > 0  # the lock holder did get in their way
    with ChatStore(path) as store:
        assert len(store.list_chats()) == 6
        assert store.chats_open_elsewhere() == {}  # every window let go of its chats on closing


def test_kill_9_of_one_window_while_the_others_write(lock_holder: Path) -> None:
    path = lock_holder
    victim = spawn("stream_writer.py", path, "victim", 1, 4, "forever")
    assert victim.stdout is not None
    finished = [victim.stdout.readline().split() for _ in range(3)]
    writers = [spawn("stream_writer.py", path, name, 2, 3) for name in ("alpha", "beta")]
    with ChatStore(path) as store:
        assert int(finished[-1][1]) in store.chats_open_elsewhere()  # the victim's chat is marked
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    for report in [report_of(w) for w in writers]:
        assert report["errors"] == []
        for chat_id, sent in report["sent"].items():
            assert counts_in_file(path, int(chat_id)) == sent, f"chat {chat_id}"
    with ChatStore(path) as store:
        for _, chat_id, message_id in finished:  # everything it reported finished is there, finished
            chat = store.load_chat(int(chat_id))
            assert [m.status.value for m in chat.messages if m.id == int(message_id)] == ["finished"]
        assert store.chats_open_elsewhere() == {}  # its mark died with it (same host, pid gone)
        assert len(store.list_chats()) >= 5
