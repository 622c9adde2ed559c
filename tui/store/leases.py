"""Which running tokendial writes which chat: a lease row per chat (owner, pid, host, heartbeat).

A window that opens a chat claims it; its store renews the heartbeat of all its leases every
HEARTBEAT_S while it runs and drops them when it closes. A lease counts as held while its
heartbeat is younger than LEASE_TTL_S and, on this host, its process is alive: so a window that
crashed (or was killed with SIGKILL) leaves no mark behind for long (at once on the same host).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tui.store.errors import ChatInUseError

HEARTBEAT_S = 5.0
"""How often a running store renews its leases."""
LEASE_TTL_S = 30.0
"""A lease whose heartbeat is older than this is stale (its window is gone)."""


@dataclass(frozen=True, slots=True)
class Instance:
    """One running tokendial process (one store): who a lease belongs to."""

    owner: str
    pid: int
    host: str

    @classmethod
    def this_process(cls) -> Instance:
        """A new identity for a store opened by this process."""
        return cls(uuid.uuid4().hex, os.getpid(), socket.gethostname())


@dataclass(frozen=True, slots=True)
class Holder:
    """Another window writing a chat: its process and how recently it was heard from."""

    pid: int
    host: str
    age_s: float
    """Seconds since its last heartbeat."""

    def describe(self) -> str:
        """``process 1234 on host``, for messages."""
        return f"process {self.pid} on {self.host}"


def in_use_error(title: str, holder: Holder, path: Path | None) -> ChatInUseError:
    """The error (and message) for opening chat ``title`` while ``holder`` writes it."""
    return ChatInUseError(
        f"“{title}” is open in another tokendial window ({holder.describe()}, "
        f"heard from {holder.age_s:.0f} s ago).",
        "Open a copy to go on with it here, or open it read-only (nothing is saved then).",
        path,
        holder,
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _live(me: Instance, pid: int, host: str, heartbeat_at: float, now: float) -> bool:
    if now - heartbeat_at >= LEASE_TTL_S:
        return False
    return host != me.host or _pid_alive(pid)


def holder_of(db: sqlite3.Connection, me: Instance, chat_id: int, now: float | None = None) -> Holder | None:
    """The live holder of chat ``chat_id`` other than ``me`` (None: free, stale, or ours)."""
    now = time.time() if now is None else now
    row = db.execute(
        "SELECT owner, pid, host, heartbeat_at FROM chat_leases WHERE chat_id = ?", (chat_id,)
    ).fetchone()
    if row is None or row[0] == me.owner or not _live(me, row[1], row[2], row[3], now):
        return None
    return Holder(pid=row[1], host=row[2], age_s=max(0.0, now - row[3]))


def claim(db: sqlite3.Connection, me: Instance, chat_id: int) -> Holder | None:
    """Take the lease of chat ``chat_id`` (call inside a write transaction); the live other
    holder instead when there is one (nothing is changed then)."""
    now = time.time()
    holder = holder_of(db, me, chat_id, now)
    if holder is not None:
        return holder
    db.execute(
        "INSERT OR REPLACE INTO chat_leases (chat_id, owner, pid, host, heartbeat_at) VALUES (?, ?, ?, ?, ?)",
        (chat_id, me.owner, me.pid, me.host, now),
    )
    return None


def release(db: sqlite3.Connection, me: Instance, chat_id: int | None = None) -> None:
    """Drop our lease of ``chat_id`` (None: all of ours)."""
    if chat_id is None:
        db.execute("DELETE FROM chat_leases WHERE owner = ?", (me.owner,))
    else:
        db.execute("DELETE FROM chat_leases WHERE chat_id = ? AND owner = ?", (chat_id, me.owner))


def renew(db: sqlite3.Connection, me: Instance) -> int:
    """Refresh the heartbeat of all our leases; how many we hold."""
    return db.execute(
        "UPDATE chat_leases SET heartbeat_at = ? WHERE owner = ?", (time.time(), me.owner)
    ).rowcount


def held_elsewhere(db: sqlite3.Connection, me: Instance) -> dict[int, Holder]:
    """Every chat another live window is writing, with its holder."""
    now = time.time()
    return {
        chat_id: Holder(pid=pid, host=host, age_s=max(0.0, now - beat))
        for chat_id, pid, host, beat in db.execute(
            "SELECT chat_id, pid, host, heartbeat_at FROM chat_leases WHERE owner != ?", (me.owner,)
        ).fetchall()
        if _live(me, pid, host, beat, now)
    }
