"""Typed store errors: each carries a message and a hint meant for the user (no traceback needed)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


class StoreError(Exception):
    """The chat store failed; ``message`` says what happened and ``hint`` how to go on."""

    def __init__(self, message: str, hint: str = "", path: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = path

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class StoreCorruptError(StoreError):
    """The database file is damaged or is not a tokendial database; it can be moved aside."""


class StoreLockedError(StoreError):
    """Another process holds the database locked (e.g. a second tokendial writing)."""


class StoreVersionError(StoreError):
    """The database was written by a newer tokendial (unknown schema version)."""


class NotFoundError(StoreError):
    """A chat or message id does not exist (e.g. deleted meanwhile)."""


class ChatInUseError(StoreError):
    """The chat is being written by another running tokendial (see ``holder``)."""

    def __init__(self, message: str, hint: str, path: Path | None, holder: object) -> None:
        super().__init__(message, hint, path)
        self.holder = holder
        """The :class:`~tui.store.leases.Holder` writing it."""


class StoreGoneError(StoreError):
    """The database file was deleted or replaced while this store had it open."""


class ImportFormatError(StoreError):
    """Data handed to ``import_json`` is not a tokendial chat export this version can read."""


SQLITE_BUSY = 5
SQLITE_LOCKED = 6


def is_busy(error: sqlite3.Error) -> bool:
    """True when ``error`` means another connection holds a lock (worth waiting and trying again)."""
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)
    text = str(error).lower()
    return "locked" in text or "busy" in text


def _describe(path: Path | None) -> str:
    return str(path) if path is not None else "the in-memory chat store"


def translate_sqlite_error(error: sqlite3.Error, path: Path | None, doing: str) -> StoreError:
    """Map a sqlite3 exception to the StoreError subclass a user can act on."""
    text = str(error).lower()
    where = _describe(path)
    if "locked" in text or "busy" in text:
        return StoreLockedError(
            f"The chat database {where} is locked by another process while {doing}.",
            "Close the other tokendial window (or program using it) and try again, "
            "or run with an in-memory store for this session.",
            path,
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StoreCorruptError(
            f"The chat database {where} is damaged ({error}).",
            "Move it aside (it is kept as <name>.corrupt-<time>) and start with an empty database, "
            "or run with an in-memory store for this session.",
            path,
        )
    if "unable to open" in text or "readonly" in text or "read-only" in text:
        return StoreError(
            f"Cannot write the chat database {where} ({error}).",
            "Check that the data directory exists and is writable, or set data_dir in the config.",
            path,
        )
    if "disk i/o" in text or "full" in text:
        return StoreError(
            f"Writing the chat database {where} failed ({error}).",
            "Free some disk space; chats are not being saved until then.",
            path,
        )
    return StoreError(f"The chat store failed while {doing}: {error}.", "", path)
