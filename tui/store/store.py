"""ChatStore: every chat autosaved to SQLite (stdlib sqlite3, WAL, foreign keys, migrations).

A write method returns only after its transaction is committed (``synchronous=FULL``), so a
finished reply survives the app being killed right after. Every sqlite3 failure comes out as a
:class:`~tui.store.errors.StoreError` with a message and a way on, never as a raw exception.

This class is the facade: it owns the connection and its lock, runs each call in one transaction
and translates errors; the SQL lives by concern in :mod:`~tui.store.chats`,
:mod:`~tui.store.messages`, :mod:`~tui.store.token_events` and :mod:`~tui.store.transfer`.
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from settings.sampling import SamplingParams
from tui.engine.events import ReplyDone, TokenEvent
from tui.store import chats, comparisons, events_codec, leases, messages, token_events, transfer
from tui.store.database import BUSY_TIMEOUT_S, LOCK_WAIT_FACTOR, backoff_s, connect
from tui.store.errors import StoreCorruptError, StoreError, StoreGoneError, is_busy, translate_sqlite_error
from tui.store.leases import Holder, Instance
from tui.store.records import (
    ChatSummary,
    MessageStatus,
    ModelRef,
    Role,
    StoredChat,
    StoredComparison,
    StoredSibling,
    now_utc,
)
from tui.store.token_events import EventRetention
from tui.store.values import params_json, ts

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

CHAT_MODES = ("chat", "completion")
"""A chat's mode: the chat template applies, or its text is continued as it is."""


def _guarded(
    doing: str,
    *,
    writes: bool = False,
) -> Callable[[Callable[Concatenate[ChatStore, P], R]], Callable[Concatenate[ChatStore, P], R]]:
    """Run a ChatStore method under its lock and turn sqlite3 errors into StoreErrors.

    A call that meets a database locked by another process is rolled back and tried again (the
    methods are one transaction each) until ``lock_wait_s`` has passed; only then it raises
    StoreLockedError.
    """

    def decorate(
        method: Callable[Concatenate[ChatStore, P], R],
    ) -> Callable[Concatenate[ChatStore, P], R]:
        @functools.wraps(method)
        def wrapper(self: ChatStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
            with self._lock:
                deadline: float | None = None
                attempt = 0
                while True:
                    if self._conn is None:
                        raise StoreError("The chat store is closed.", "", self.path)
                    gone = self.check_file() if writes else None
                    if gone is not None:  # not into the old file: its -wal may serve another one now
                        raise gone
                    try:
                        return method(self, *args, **kwargs)
                    except StoreError as error:
                        self._rollback()
                        if error.path is None:
                            error.path = self.path
                        raise
                    except sqlite3.Error as error:
                        self._rollback()
                        if is_busy(error):  # another process is writing: wait, then try again
                            now = time.monotonic()
                            deadline = deadline if deadline is not None else now + self.lock_wait_s
                            if now < deadline:
                                self.lock_retries += 1
                                log.info("chat database locked while %s; trying again", doing)
                                time.sleep(min(backoff_s(attempt), max(0.0, deadline - now)))
                                attempt += 1
                                continue
                        raise translate_sqlite_error(error, self.path, doing) from error
                    except (ValueError, TypeError, KeyError) as error:  # a stored value that does not decode
                        self._rollback()
                        raise StoreCorruptError(
                            f"Part of the chat database could not be read while {doing} ({error}).",
                            "Export the chats you need, then move the database aside and start a fresh one.",
                            self.path,
                        ) from error

        return wrapper

    return decorate


def _file_identity(path: Path | None) -> tuple[int, int] | None:
    """(device, inode) of the database file; None when in memory or gone."""
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


class ChatStore:
    """All chats in one SQLite file (or in memory). Thread-safe; every write is committed on return."""

    def __init__(
        self,
        path: Path | None,
        *,
        retention: EventRetention | None = None,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        lock_wait_s: float | None = None,
        check: bool = True,
    ) -> None:
        """Open (creating or upgrading) the database at ``path``; None = in memory.

        Raises StoreCorruptError, StoreLockedError, StoreVersionError or StoreError.
        ``busy_timeout_s`` is SQLite's own wait per statement; a call still locked out is tried
        again until ``lock_wait_s`` (default: LOCK_WAIT_FACTOR busy timeouts) has passed.
        ``check`` runs ``PRAGMA quick_check`` so damage is found at open, not mid-chat.
        """
        self.path = path
        self.retention = retention or EventRetention()
        self.busy_timeout_s = busy_timeout_s
        self.lock_wait_s = lock_wait_s if lock_wait_s is not None else LOCK_WAIT_FACTOR * busy_timeout_s
        self.lock_retries = 0
        """How often a call met a locked database and was tried again (for tests and logs)."""
        self.instance = Instance.this_process()
        """Who this store's chat leases belong to."""
        self.detached: StoreGoneError | None = None
        """Set once the file was found deleted or replaced (from then on writes raise it)."""
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._conn = connect(path, busy_timeout_s=busy_timeout_s, lock_wait_s=self.lock_wait_s, check=check)
        self._identity = _file_identity(path)
        self._heartbeat: threading.Thread | None = None
        self._closing = threading.Event()

    @classmethod
    def in_memory(cls, *, retention: EventRetention | None = None) -> ChatStore:
        """A store that lives only for this session (the way on when the file cannot be used)."""
        return cls(None, retention=retention)

    @property
    def is_persistent(self) -> bool:
        """False for an in-memory store."""
        return self.path is not None

    def close(self) -> None:
        """Drop this store's chat leases and close the database (idempotent)."""
        self._closing.set()
        with self._lock:
            if self._conn is not None:
                try:
                    self.release_chat(None)
                except StoreError as error:  # the leases expire on their own
                    log.info("chat leases not released: %s", error)
                self._conn.close()
                self._conn = None
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join(timeout=5)

    def check_file(self) -> StoreGoneError | None:
        """Whether the database file is still the one opened (not deleted, moved or replaced).

        When it is not, ``detached`` says so from then on and every write raises it (what was
        saved can still be read, and exported, through the open file).
        """
        if self.detached is None and self.path is not None and _file_identity(self.path) != self._identity:
            self.detached = StoreGoneError(
                f"The chat database {self.path} was deleted or replaced while tokendial was running.",
                "Chats of this window are no longer saved; a new chat goes on in a fresh database at "
                "that path with this window's saved chats copied into it (the other windows' chats "
                "are not touched).",
                self.path,
            )
            log.warning("%s", self.detached)
        return self.detached

    def __enter__(self) -> ChatStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _db(self) -> sqlite3.Connection:
        assert self._conn is not None
        return self._conn

    def _rollback(self) -> None:
        if self._conn is not None and self._conn.in_transaction:
            with suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _reclaim_space(self) -> None:
        """Give freed pages back to the file system (best effort: what was deleted stays deleted)."""
        if self.path is not None:
            try:
                self._db.execute("PRAGMA incremental_vacuum").fetchall()
            except sqlite3.Error as error:
                log.info("reclaiming free pages skipped: %s", error)

    # -- which window writes which chat -----------------------------------------------------------

    @_guarded("claiming a chat")
    def claim_chat(self, chat_id: int) -> Holder | None:
        """Mark chat ``chat_id`` as written by this window; the other live window writing it
        instead (then nothing changes). Starts the heartbeat that keeps the mark alive."""
        if self.path is None:
            return None
        with self._transaction() as db:
            chats.require_chat(db, chat_id)
            holder = leases.claim(db, self.instance, chat_id)
        if holder is None:
            self._start_heartbeat()
        return holder

    @_guarded("releasing a chat")
    def release_chat(self, chat_id: int | None) -> None:
        """This window no longer writes chat ``chat_id`` (None: any chat)."""
        if self.path is not None:
            with self._transaction() as db:
                leases.release(db, self.instance, chat_id)

    @_guarded("renewing chat leases")
    def renew_leases(self) -> int:
        """Refresh the heartbeat of this window's chats (the heartbeat thread does it); how many."""
        if self.path is None:
            return 0
        self.check_file()
        with self._transaction() as db:
            return leases.renew(db, self.instance)

    @_guarded("listing chats open elsewhere")
    def chats_open_elsewhere(self) -> dict[int, Holder]:
        """Chats another running tokendial is writing, with who writes them."""
        if self.path is None:
            return {}
        return leases.held_elsewhere(self._db, self.instance)

    def _start_heartbeat(self) -> None:
        if self._heartbeat is not None or self._closing.is_set():
            return

        def beat() -> None:
            while not self._closing.wait(leases.HEARTBEAT_S):
                try:
                    self.renew_leases()
                except StoreError as error:  # reported by the next write; the lease may lapse
                    log.info("heartbeat failed: %s", error)

        self._heartbeat = threading.Thread(target=beat, name="tokendial-store-heartbeat", daemon=True)
        self._heartbeat.start()

    # -- chats ------------------------------------------------------------------------------------

    @_guarded("creating a chat", writes=True)
    def create_chat(self, title: str | None = None, params: SamplingParams | None = None) -> int:
        """A new empty chat; without a title it takes one from its first prompt. Returns its id."""
        with self._transaction() as db:
            return chats.create_chat(db, title, params, ts(now_utc()))

    @_guarded("renaming a chat", writes=True)
    def rename_chat(self, chat_id: int, title: str) -> None:
        """Give a chat a title of the user's choosing (it no longer follows the first prompt)."""
        title = " ".join(title.split())
        if not title:
            raise StoreError("A chat title cannot be empty.", "Type at least one character.", self.path)
        with self._transaction() as db:
            chats.require_chat(db, chat_id)
            db.execute("UPDATE chats SET title = ?, title_is_auto = 0 WHERE id = ?", (title, chat_id))

    @_guarded("deleting a chat", writes=True)
    def delete_chat(self, chat_id: int) -> None:
        """Delete a chat with its messages and token events."""
        with self._transaction() as db:
            chats.require_chat(db, chat_id)
            db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))
        self._reclaim_space()

    @_guarded("saving the chat's parameters", writes=True)
    def set_last_params(self, chat_id: int, params: SamplingParams) -> None:
        """Remember the parameters the chat's next reply should use."""
        with self._transaction() as db:
            chats.set_chat_column(db, chat_id, "last_params", params_json(params))

    def set_chat_mode(self, chat_id: int, mode: str) -> None:
        """``chat`` or ``completion`` (text completion) for this chat's next replies."""
        if mode not in CHAT_MODES:
            raise ValueError(f"chat mode must be one of {', '.join(CHAT_MODES)}, not {mode!r}")
        self._save_chat_mode(chat_id, mode)

    @_guarded("saving the chat's mode", writes=True)
    def _save_chat_mode(self, chat_id: int, mode: str) -> None:
        with self._transaction() as db:
            chats.set_chat_column(db, chat_id, "mode", mode)

    @_guarded("changing token-event retention", writes=True)
    def set_keep_events(self, chat_id: int, keep: bool) -> None:
        """Keep this chat's token events regardless of the retention limits (or stop doing so)."""
        with self._transaction() as db:
            chats.set_chat_column(db, chat_id, "keep_events", int(keep))

    @_guarded("listing chats")
    def list_chats(self, search: str | None = None, limit: int | None = None) -> list[ChatSummary]:
        """Chats, most recently updated first; ``search`` matches titles and message text (any case)."""
        return chats.list_chats(self._db, search, limit)

    @_guarded("loading a chat")
    def load_chat(self, chat_id: int) -> StoredChat:
        """A chat with all its messages and the parameters its next reply should use."""
        return chats.load_chat(self._db, chat_id)

    # -- messages ---------------------------------------------------------------------------------

    @_guarded("saving a message", writes=True)
    def add_message(self, chat_id: int, role: Role | str, text: str) -> int:
        """Append a finished message (system, user, or an assistant reply without metadata)."""
        try:
            role = Role(role)
        except ValueError:
            raise StoreError(f"Unknown message role {role!r}.", "Use system, user or assistant.") from None
        with self._transaction() as db:
            return messages.insert_message(db, chat_id, role, text, MessageStatus.FINISHED, ts(now_utc()))

    def add_user_message(self, chat_id: int, text: str) -> int:
        """Append the user's prompt (the first one names an untitled chat). Returns the message id."""
        return self.add_message(chat_id, Role.USER, text)

    @_guarded("starting a reply", writes=True)
    def begin_assistant_message(
        self,
        chat_id: int,
        params: SamplingParams,
        model: ModelRef | None = None,
        *,
        params_version: int = 0,
    ) -> int:
        """Append an assistant reply about to be generated, saved at once as 'interrupted'.

        It becomes 'finished' only through :meth:`finish_assistant_message`; if the app dies first,
        it stays 'interrupted' with the last partial text saved.
        """
        with self._transaction() as db:
            return messages.begin_reply(db, chat_id, params, model, params_version, ts(now_utc()))

    @_guarded("saving the partial reply", writes=True)
    def update_assistant_text(self, message_id: int, text: str, token_count: int | None = None) -> None:
        """Save the partial text of a reply in progress (call it every second or so, not per token).

        A reply that is already finished is left as it is.
        """
        with self._transaction() as db:
            messages.update_reply_text(db, message_id, text, token_count)

    @_guarded("saving the finished reply", writes=True)
    def finish_assistant_message(
        self,
        message_id: int,
        done: ReplyDone,
        events: Sequence[TokenEvent] | None = None,
        model: ModelRef | None = None,
    ) -> None:
        """Store a reply's final text, stop reason, timings and parameters (and its token events).

        ``model`` replaces the model recorded at the start (e.g. once its fingerprint is known).
        Committed to disk before it returns: call it before showing the reply as finished.
        """
        blob = (
            events_codec.pack_events(events, max_bytes=self.retention.max_message_bytes) if events else None
        )
        with self._transaction() as db:
            messages.finish_reply(db, message_id, done, blob, len(events or ()), model, ts(now_utc()))
        if blob is not None:
            try:
                self._prune_events()
            except sqlite3.Error as error:  # the reply is committed; pruning can wait
                log.warning("pruning token events failed: %s", error)

    @_guarded("removing messages", writes=True)
    def truncate_chat(self, chat_id: int, keep: int) -> None:
        """Delete every message from position ``keep`` on (regenerate, edit and resend)."""
        with self._transaction() as db:
            messages.truncate_chat(db, chat_id, keep, ts(now_utc()))

    # -- branch siblings --------------------------------------------------------------------------

    @_guarded("saving the reply's branches", writes=True)
    def set_siblings(
        self,
        message_id: int,
        ordinal: int,
        branched_at: int | None,
        others: Sequence[StoredSibling],
    ) -> None:
        """Record the other continuations of reply ``message_id`` (replacing any recorded before).

        ``ordinal`` is the shown reply's place among them and ``branched_at`` the token it
        branched at; each sibling's token events are kept like a reply's (candidates dropped, or
        the events left out, when too big).
        """
        ordinals = [s.ordinal for s in others]
        if ordinal in ordinals or len(set(ordinals)) != len(ordinals):
            raise StoreError("Each branch of a reply needs its own place.", "", self.path)
        blobs = [
            events_codec.pack_events(s.events, max_bytes=self.retention.max_message_bytes)
            if s.events
            else None
            for s in others
        ]
        rows = [
            (s.ordinal, s.text, s.status, s.reply, s.branched_at, blob, len(s.events or ()))
            for s, blob in zip(others, blobs, strict=True)
        ]
        with self._transaction() as db:
            messages.set_siblings(db, message_id, ordinal, branched_at, rows)

    @_guarded("loading the reply's branches")
    def load_siblings(self, message_id: int) -> list[StoredSibling]:
        """The other continuations of reply ``message_id``, in order (empty: never branched)."""
        siblings = []
        for ordinal, text, status, reply, branched_at, rows in messages.sibling_rows(self._db, message_id):
            try:
                events = events_codec.rows_to_events(rows) if rows is not None else None
            except (ValueError, TypeError) as error:
                log.warning("token events of a branch of message %s unreadable: %s", message_id, error)
                events = None
            siblings.append(
                StoredSibling(
                    ordinal=ordinal,
                    text=text,
                    reply=reply,
                    status=status,
                    branched_at=branched_at,
                    events=events,
                )
            )
        return siblings

    # -- token events -----------------------------------------------------------------------------

    # -- comparisons ------------------------------------------------------------------------------

    @_guarded("saving a comparison", writes=True)
    def add_comparison(self, chat_id: int, comparison: StoredComparison) -> int:
        """Save a compare run with chat ``chat_id`` (its place: after the chat's messages now); its id."""
        with self._transaction() as db:
            after = comparisons.message_count(db, chat_id)
            return comparisons.insert_comparison(
                db, chat_id, comparison.model_copy(update={"after_messages": after})
            )

    @_guarded("loading the chat's comparisons")
    def load_comparisons(self, chat_id: int) -> list[StoredComparison]:
        """The compare runs saved with chat ``chat_id``, oldest first."""
        return comparisons.load_comparisons(self._db, chat_id)

    @_guarded("loading token events")
    def load_events(self, message_id: int) -> tuple[TokenEvent, ...] | None:
        """A reply's token events, or None when they were not kept (or pruned, or unreadable)."""
        try:
            rows = token_events.event_rows(self._db, message_id)
            return None if rows is None else events_codec.rows_to_events(rows)
        except (ValueError, TypeError, zlib.error) as error:
            log.warning("token events of message %s unreadable: %s", message_id, error)
            return None

    @_guarded("measuring token events")
    def events_bytes(self) -> int:
        """Total compressed size of the stored token events."""
        return token_events.events_bytes(self._db)

    def _prune_events(self) -> None:
        """Drop token events outside the retention limits (kept chats excepted)."""
        with self._transaction() as db:
            token_events.prune_events(db, self.retention)
        self._reclaim_space()

    # -- export / import --------------------------------------------------------------------------

    def export_markdown(self, chat_id: int) -> str:
        """The chat as readable Markdown, with a parameter line and stop reason under each reply."""
        from tui.store.export import chat_to_markdown

        chat = self.load_chat(chat_id)
        return chat_to_markdown(chat, self._bias_texts(chat), self.load_comparisons(chat_id))

    def _bias_texts(self, chat: StoredChat) -> dict[int, str]:
        """The text of each token a reply's logit bias names, as the chat's token events recorded it."""
        wanted = {t for m in chat.messages if m.reply for p in m.reply.params.values() for t in p.logit_bias}
        texts: dict[int, str] = {}
        for message in chat.messages if wanted else ():
            for event in (self.load_events(message.id) if message.reply else None) or ():
                pairs = [(event.token_id, event.piece), *((c.token_id, c.text) for c in event.candidates)]
                texts.update((token, text) for token, text in pairs if token in wanted)
        return texts

    @_guarded("exporting a chat")
    def export_json(self, chat_id: int, *, include_events: bool = True) -> dict[str, Any]:
        """The complete chat as a JSON-able dict (versioned format, see :mod:`tui.store.export`)."""
        return transfer.export_chat(self._db, chat_id, include_events=include_events)

    def copy_chat(self, chat_id: int) -> int:
        """A copy of chat ``chat_id`` (messages, branches, token events) titled "… (copy)"; its id."""
        data = self.export_json(chat_id)
        data["chat"]["title"] = f"{data['chat']['title']} (copy)"
        data["chat"]["title_is_auto"] = False
        return self.import_json(data)

    @_guarded("importing a chat", writes=True)
    def import_json(self, data: Mapping[str, Any] | str | bytes) -> int:
        """Add a chat from :meth:`export_json` output (dict or JSON text). Returns the new chat id.

        Raises ImportFormatError (a StoreError) with a clear message when the data is not an export.
        """
        from tui.store.export import parse_export

        export = parse_export(data)
        with self._transaction() as db:
            return transfer.import_chat(db, export, ts(now_utc()))
