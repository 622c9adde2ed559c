"""Opening the SQLite file: the data dir, pragmas (WAL, foreign keys, synchronous=FULL), check, migrate.

Several tokendial processes may open one file at the same moment (two windows started together):
opening waits for a lock held by another process and tries again until ``lock_wait_s`` has passed,
and the migration re-reads the schema version under the write lock (see :func:`schema.migrate`).
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from pathlib import Path

from tui.store.errors import StoreError, StoreLockedError, is_busy, translate_sqlite_error
from tui.store.schema import migrate

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 2.0
"""How long SQLite itself waits for a lock on each statement."""
LOCK_WAIT_FACTOR = 5
"""A call that still meets a lock is tried again for up to this many busy timeouts in all."""


def backoff_s(attempt: int) -> float:
    """The pause before try number ``attempt + 1`` against a locked database (jittered, capped)."""
    return min(0.01 * 2.0**attempt, 0.25) * random.uniform(0.5, 1.5)


def connect(
    path: Path | None, *, busy_timeout_s: float, lock_wait_s: float, check: bool
) -> sqlite3.Connection:
    """A connection to the chat database at ``path`` (None = in memory), created or upgraded.

    Raises StoreCorruptError, StoreLockedError (still locked after ``lock_wait_s``),
    StoreVersionError or StoreError. ``check`` runs ``PRAGMA quick_check`` so damage is found
    at open, not mid-chat.
    """
    if path is not None:
        _check_data_dir(path)
    deadline = time.monotonic() + lock_wait_s
    attempt = 0
    while True:
        try:
            return _connect_once(path, busy_timeout_s=busy_timeout_s, check=check)
        except StoreLockedError:
            if time.monotonic() >= deadline:
                raise
            log.info("chat database %s locked while opening; trying again", path)
            time.sleep(backoff_s(attempt))
            attempt += 1


def _connect_once(path: Path | None, *, busy_timeout_s: float, check: bool) -> sqlite3.Connection:
    target = ":memory:" if path is None else str(path)
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(target, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")
        if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
            # Only on a new, empty file (before WAL writes the header): lets the pages
            # freed by pruning and deleting be given back to the file system.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        if path is not None:
            _use_wal(conn)
        conn.execute("PRAGMA synchronous = FULL")
        if check and path is not None:
            result = [row[0] for row in conn.execute("PRAGMA quick_check")]
            if result != ["ok"]:
                raise sqlite3.DatabaseError(f"database disk image is malformed: {result[0]}")
        migrate(conn)
        if path is not None:
            _check_writable(conn)
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


def _check_writable(conn: sqlite3.Connection) -> None:
    """A read-only file or data dir is said at open, not at the first reply (a write that is
    rolled back; skipped while another window holds the write lock, which only a writer can)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE schema_version SET version = version")
    except sqlite3.OperationalError as error:
        if not is_busy(error):
            raise
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL (readers never block the writer). SQLite answers with the old mode, not an
    error, when another connection keeps it from switching: that counts as locked."""
    mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
    if mode != "wal":
        raise sqlite3.OperationalError(f"database is locked (journal mode stayed {mode})")


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
