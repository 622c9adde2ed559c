"""Opening the SQLite file: the data dir, pragmas (WAL, foreign keys, synchronous=FULL), check, migrate."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tui.store.errors import StoreError, translate_sqlite_error
from tui.store.schema import migrate


def connect(path: Path | None, *, busy_timeout_s: float, check: bool) -> sqlite3.Connection:
    """A connection to the chat database at ``path`` (None = in memory), created or upgraded.

    Raises StoreCorruptError, StoreLockedError, StoreVersionError or StoreError.
    ``check`` runs ``PRAGMA quick_check`` so damage is found at open, not mid-chat.
    """
    target = ":memory:" if path is None else str(path)
    if path is not None:
        _check_data_dir(path)
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(target, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")
        if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
            # Only on a new, empty file (before WAL writes the header): lets the pages
            # freed by pruning and deleting be given back to the file system.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        if path is not None:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
        conn.execute("PRAGMA synchronous = FULL")
        if check and path is not None:
            result = [row[0] for row in conn.execute("PRAGMA quick_check")]
            if result != ["ok"]:
                raise sqlite3.DatabaseError(f"database disk image is malformed: {result[0]}")
        migrate(conn)
    except sqlite3.Error as error:
        if conn is not None:
            conn.close()
        raise translate_sqlite_error(error, path, "opening it") from error
    except StoreError as error:
        if conn is not None:
            conn.close()
        error.path = path
        raise
    return conn


def _check_data_dir(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(
            f"Cannot create the data directory {path.parent} ({error.strerror or error}).",
            "Set data_dir in the config to a writable directory, or run with an in-memory store.",
            path,
        ) from error
    if path.exists() and path.is_dir():
        raise StoreError(
            f"The chat database path {path} is a directory.",
            "Remove it or set data_dir to another directory.",
            path,
        )
