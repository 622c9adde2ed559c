"""Several processes opening one chat database at the same moment (two windows started together).

Each round prepares the file (absent, empty, or at an older schema version with a chat in it),
then tells every worker process to open it after a small random delay. Every worker must get the
persistent store (none falls back to memory), and the file must end exactly at the current schema
with its chat intact.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tui.store import ChatStore
from tui.store.schema import CURRENT_VERSION, MIGRATIONS

HERE = Path(__file__).parent
WORKERS = 3
ROUNDS_FRESH = 100
ROUNDS_PER_OLD_VERSION = 15


def make_at_version(path: Path, version: int) -> None:
    """A database at schema ``version`` (its migrations applied by hand, not by migrate()) with one chat."""
    conn = sqlite3.connect(path, isolation_level=None)
    script = "CREATE TABLE schema_version (version INTEGER NOT NULL);\n"
    script += f"INSERT INTO schema_version VALUES ({version});\n"
    script += "".join(sql for step, sql in MIGRATIONS if step <= version)
    conn.executescript(script)
    stamp = "2025-01-01T00:00:00+00:00"
    conn.execute(
        "INSERT INTO chats (id, title, created_at, updated_at) VALUES (1, 'kept', ?, ?)", (stamp, stamp)
    )
    conn.execute(
        "INSERT INTO messages (chat_id, position, role, text, created_at)"
        " VALUES (1, 0, 'user', 'old prompt', ?)",
        (stamp,),
    )
    conn.close()


def schema_of(path: Path) -> dict[str, Any]:
    """Tables with their columns, indexes, and the version rows: what "exactly current" is compared on."""
    conn = sqlite3.connect(path)
    try:
        tables = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        return {
            "tables": {t: [tuple(c[1:]) for c in conn.execute(f"PRAGMA table_info({t})")] for t in tables},
            "indexes": sorted(
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
            ),
            "versions": [r[0] for r in conn.execute("SELECT version FROM schema_version")],
        }
    finally:
        conn.close()


@pytest.fixture(scope="module")
def current_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("reference") / "chats.sqlite3"
    ChatStore(path).close()
    schema = schema_of(path)
    assert schema["versions"] == [CURRENT_VERSION]
    return schema


@pytest.fixture(scope="module")
def workers() -> Iterator[list[subprocess.Popen[str]]]:
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "open_worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=HERE.parent.parent,
        )
        for _ in range(WORKERS)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
    yield procs
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def race(procs: list[subprocess.Popen[str]], path: Path, rng: random.Random) -> list[dict[str, Any]]:
    """Tell every worker to open ``path`` after a jittered delay (0-5 ms); their reports."""
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(f"{path} {rng.uniform(0, 0.005):.4f}\n")
        proc.stdin.flush()
    reports = []
    for proc in procs:
        assert proc.stdout is not None
        reports.append(json.loads(proc.stdout.readline()))
    return reports


@pytest.mark.parametrize(
    ("start", "rounds"),
    [("absent", ROUNDS_FRESH), ("empty file", ROUNDS_PER_OLD_VERSION)]
    + [(f"v{v}", ROUNDS_PER_OLD_VERSION) for v in range(1, CURRENT_VERSION)],
)
def test_processes_opening_at_once_all_get_the_database(
    tmp_path: Path,
    workers: list[subprocess.Popen[str]],
    current_schema: dict[str, Any],
    start: str,
    rounds: int,
) -> None:
    rng = random.Random(f"{start}-19")
    failures = []
    for n in range(rounds):
        path = tmp_path / f"round{n}" / "chats.sqlite3"
        path.parent.mkdir()
        if start == "empty file":  # another process has just created it and not yet written
            path.touch()
        elif start.startswith("v"):
            make_at_version(path, int(start[1:]))
        reports = race(workers, path, rng)
        failures += [(n, r["problem"]) for r in reports if not r["persistent"] or r["problem"]]
        assert schema_of(path) == current_schema, f"round {n}"
        if start.startswith("v"):
            conn = sqlite3.connect(path)
            kept = conn.execute(
                "SELECT c.title, m.text FROM chats c JOIN messages m ON m.chat_id = c.id"
            ).fetchall()
            conn.close()
            assert kept == [("kept", "old prompt")], f"round {n}"
    assert failures == []
