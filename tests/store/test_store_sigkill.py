"""SIGKILL a real writer process mid-reply.

Every finished message survives; the reply in progress is saved as 'interrupted'.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from settings.sampling import SamplingParams
from tui.store import ChatStore, MessageStatus, Role

WRITER = Path(__file__).with_name("sigkill_writer.py")
APP = Path(__file__).with_name("sigkill_app.py")
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def _start(*args: str, script: Path = WRITER) -> subprocess.Popen[str]:
    paths = [str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _read_until(proc: subprocess.Popen[str], done: str, count: int = 1) -> list[str]:
    lines: list[str] = []
    assert proc.stdout is not None
    seen = 0
    while seen < count:
        line = proc.stdout.readline()
        if not line:
            stderr = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"writer ended early: {lines!r}\n{stderr}")
        lines.append(line.strip())
        if line.startswith(done):
            seen += 1
    return lines


def _finished(lines: list[str]) -> dict[int, str]:
    """Reply id -> text of every reply the writer reported finished."""
    return {int(line.split()[1]): line.split(maxsplit=2)[2] for line in lines if line.startswith("FINISHED")}


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()


def _assert_intact(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()


def test_sigkill_mid_reply_keeps_finished_messages(db_path: Path) -> None:
    proc = _start(str(db_path), "steady")
    try:
        lines = _read_until(proc, "PARTIAL")
    finally:
        _kill(proc)
    finished = _finished(lines)
    in_progress = int(next(line for line in lines if line.startswith("PARTIAL")).split()[1])
    chat_id = int(lines[0].split()[1])
    assert len(finished) == 3

    _assert_intact(db_path)
    with ChatStore(db_path) as store:
        chat = store.load_chat(chat_id)
        assert [m.role for m in chat.messages] == [Role.USER, Role.ASSISTANT] * 4
        by_id = {m.id: m for m in chat.messages}
        for message_id, text in finished.items():
            message = by_id[message_id]
            assert (message.text, message.status) == (text, MessageStatus.FINISHED)
            assert message.reply is not None and message.reply.stop_label == "end of sequence <|im_end|>"
            assert store.load_events(message_id) is not None
        last = by_id[in_progress]
        assert last.status is MessageStatus.INTERRUPTED
        assert last.text == "partial rep"
        assert last.reply is not None and last.reply.token_count == 2 and last.reply.stop is None
        assert chat.messages[-1].id == in_progress
        # the chat goes on after the crash
        store.add_user_message(chat_id, "still there?")


def test_sigkill_during_busy_writes_loses_at_most_the_reply_in_progress(db_path: Path) -> None:
    proc = _start(str(db_path), "loop")
    try:
        lines = _read_until(proc, "FINISHED", count=15)
    finally:
        _kill(proc)  # lands at an arbitrary point of the write loop
    finished = _finished(lines)
    chat_id = int(lines[0].split()[1])

    _assert_intact(db_path)
    with ChatStore(db_path) as store:
        chat = store.load_chat(chat_id)
        by_id = {m.id: m for m in chat.messages}
        for message_id, text in finished.items():
            assert (by_id[message_id].text, by_id[message_id].status) == (text, MessageStatus.FINISHED)
        interrupted = [m for m in chat.messages if m.status is MessageStatus.INTERRUPTED]
        assert len(interrupted) <= 1
        assert all(m.id == chat.messages[-1].id for m in interrupted)


def test_sigkill_of_the_app_mid_reply(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    proc = _start(str(data_dir), script=APP)
    try:
        lines = _read_until(proc, "READY")
    finally:
        _kill(proc)
    assert lines[:2] == ["FINISHED first prompt", "FINISHED second prompt"]

    db_path = data_dir / "chats.sqlite3"
    _assert_intact(db_path)
    with ChatStore(db_path) as store:
        (summary,) = store.list_chats()
        chat = store.load_chat(summary.id)
        statuses = [(m.role, m.status) for m in chat.messages]
        assert statuses == [
            (Role.USER, MessageStatus.FINISHED),
            (Role.ASSISTANT, MessageStatus.FINISHED),
            (Role.USER, MessageStatus.FINISHED),
            (Role.ASSISTANT, MessageStatus.FINISHED),
            (Role.USER, MessageStatus.FINISHED),
            (Role.ASSISTANT, MessageStatus.INTERRUPTED),
        ]
        assert [m.text for m in chat.messages[::2]] == ["first prompt", "second prompt", "third prompt"]
        finished = chat.messages[1]
        assert finished.text == "Hello, I am a small model.\nAsk me anything!"
        assert finished.reply is not None and finished.reply.stop_label == "end of sequence <|im_end|>"
        assert chat.last_params == SamplingParams(top_k=11)
        partial = chat.messages[-1]
        assert partial.text == "Hello, I am"  # the 4 tokens before the hold, saved as they streamed
