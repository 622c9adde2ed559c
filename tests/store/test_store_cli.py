"""``tokendial chats``: the saved chats on stdout, a chat store that is not saved said on stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from settings.sampling import SamplingParams
from tui.store import ChatStore, default_db_path
from tui.store.session import ChatSession

ROOT = Path(__file__).parent.parent.parent


def tokendial(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TOKENDIAL_DATA_DIR": str(data_dir), "TOKENDIAL_CONFIG": str(data_dir / "none.toml")}
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_chats_lists_them_and_marks_those_open_elsewhere(tmp_path: Path) -> None:
    path = default_db_path(tmp_path)
    with ChatStore(path) as store:
        store.add_user_message(store.create_chat(), "a closed chat")
    window = ChatSession(ChatStore(path))
    window.user_message("a chat being written", SamplingParams())
    result = tokendial(tmp_path, "chats")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert "a chat being written" in lines[0] and "[open in another window: process" in lines[0]
    assert "a closed chat" in lines[1] and "open in another window" not in lines[1]
    assert result.stderr == ""
    window.store.close()
    assert "open in another window" not in tokendial(tmp_path, "chats", "--search", "being").stdout


def test_a_store_that_cannot_be_used_is_said_on_stderr(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = tokendial(blocker / "data", "chats")
    assert result.returncode == 1
    assert "chats are NOT saved in this session" in result.stderr
    assert "Cannot create the data directory" in result.stderr
    assert "Traceback" not in result.stderr
