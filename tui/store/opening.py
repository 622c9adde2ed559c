"""Where the chat database lives and how the app opens it: never raising, a way on always taken."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tui.store.database import BUSY_TIMEOUT_S
from tui.store.errors import StoreCorruptError, StoreError, StoreLockedError
from tui.store.records import now_utc
from tui.store.store import ChatStore

log = logging.getLogger(__name__)

DB_FILE_NAME = "chats.sqlite3"


def default_db_path(data_dir: Path) -> Path:
    """Where the chat database lives inside the user data dir."""
    return data_dir / DB_FILE_NAME


def move_aside(path: Path) -> Path:
    """Rename a damaged database (and its -wal/-shm files) to ``<name>.corrupt-<time>``; returns the new path.

    Nothing is deleted: the user can still try to recover it with sqlite3's ``.recover``.
    """
    stamp = now_utc().strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm", "-journal"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            source.rename(target.with_name(target.name + suffix))
    return target


@dataclass(frozen=True, slots=True)
class OpenedStore:
    """The result of :func:`open_store`: a usable store, and what the user should be told."""

    store: ChatStore
    problem: StoreError | None = None
    """Why the preferred store could not be used (None when all went well)."""
    moved_to: Path | None = None
    """Where a damaged database was moved."""


def open_store(
    path: Path,
    *,
    recover_corrupt: bool = False,
    busy_timeout_s: float = BUSY_TIMEOUT_S,
    lock_wait_s: float | None = None,
) -> OpenedStore:
    """Open the chat database, never raising: a way on is always taken.

    Damaged file: with ``recover_corrupt`` it is moved aside and a fresh database started,
    else an in-memory store is used. Locked, newer version or unwritable: an in-memory store.
    ``problem`` carries the message to show.
    """

    def store() -> ChatStore:
        return ChatStore(path, busy_timeout_s=busy_timeout_s, lock_wait_s=lock_wait_s)

    try:
        return OpenedStore(store())
    except StoreCorruptError as error:
        if recover_corrupt:
            try:
                moved = move_aside(path)
                return OpenedStore(store(), error, moved)
            except (OSError, StoreError) as second:
                log.warning("starting a fresh chat database failed: %s", second)
        return OpenedStore(ChatStore.in_memory(), error)
    except (StoreLockedError, StoreError) as error:
        return OpenedStore(ChatStore.in_memory(), error)


def store_notice(opened: OpenedStore) -> str | None:
    """The line a command writes on stderr when its chats will not be saved (None: they will)."""
    if opened.store.is_persistent and opened.problem is None:
        return None
    if opened.store.is_persistent and opened.moved_to is not None:
        return f"the damaged chat database was moved to {opened.moved_to}; a fresh one was started"
    why = str(opened.problem) if opened.problem is not None else "the chat store is in memory"
    return f"chats are NOT saved in this session (kept in memory only): {why}"
