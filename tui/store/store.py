"""ChatStore: every chat autosaved to SQLite (stdlib sqlite3, WAL, foreign keys, migrations).

A write method returns only after its transaction is committed (``synchronous=FULL``), so a
finished reply survives the app being killed right after. Every sqlite3 failure comes out as a
:class:`~tui.store.errors.StoreError` with a message and a way on, never as a raw exception.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from pydantic import ValidationError

from settings.sampling import SamplingParams
from tui.engine.events import ReplyDone, StopKind, StopReason, TokenEvent
from tui.store import events_codec
from tui.store.errors import (
    NotFoundError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    translate_sqlite_error,
)
from tui.store.records import (
    ChatSummary,
    MessageStatus,
    ModelRef,
    Role,
    StoredChat,
    StoredMessage,
    StoredReply,
    StoredSibling,
    now_utc,
)
from tui.store.schema import migrate

if TYPE_CHECKING:
    from tui.store.export import SiblingRows

log = logging.getLogger(__name__)

DB_FILE_NAME = "chats.sqlite3"
DEFAULT_TITLE = "New chat"
TITLE_MAX = 60

P = ParamSpec("P")
R = TypeVar("R")


CHAT_MODES = ("chat", "completion")
"""A chat's mode: the chat template applies, or its text is continued as it is."""


def default_db_path(data_dir: Path) -> Path:
    """Where the chat database lives inside the user data dir."""
    return data_dir / DB_FILE_NAME


def title_from_prompt(prompt: str) -> str:
    """A chat title from its first prompt: first non-empty line, whitespace collapsed, shortened."""
    line = next((ln for ln in prompt.splitlines() if ln.strip()), "")
    title = " ".join(line.split())
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX - 1].rstrip() + "…"
    return title or DEFAULT_TITLE


@dataclass(frozen=True, slots=True)
class EventRetention:
    """How much token-event data the store keeps (chats marked keep_events are exempt)."""

    keep_chats: int = 20
    """Token events are kept for the most recently active chats."""
    max_bytes: int = 64 * 1024 * 1024
    """Total compressed size of all prunable token events."""
    max_message_bytes: int = 8 * 1024 * 1024
    """One reply's blob; bigger ones are stored without candidates, or not at all."""


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _params_json(params: SamplingParams) -> str:
    return params.model_dump_json()


def _load_params(raw: str | None) -> SamplingParams | None:
    """Parameters from JSON; unknown or invalid fields fall back to defaults instead of failing."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    known = {k: v for k, v in data.items() if k in SamplingParams.model_fields}
    try:
        return SamplingParams.model_validate(known)
    except ValidationError:
        valid: dict[str, Any] = {}
        for key, value in known.items():
            try:
                SamplingParams.model_validate({**valid, key: value})
            except ValidationError:
                continue
            valid[key] = value
        return SamplingParams.model_validate(valid)


def _params_map_json(params: Mapping[int, SamplingParams]) -> str:
    return json.dumps({str(v): p.model_dump(mode="json") for v, p in sorted(params.items())})


def _load_params_map(raw: str) -> dict[int, SamplingParams]:
    result: dict[int, SamplingParams] = {}
    for version, value in json.loads(raw).items():
        params = _load_params(json.dumps(value))
        if params is not None:
            result[int(version)] = params
    return result


def _stop_json(stop: StopReason) -> str:
    return json.dumps(asdict(stop))


def _load_stop(raw: str | None) -> StopReason | None:
    if not raw:
        return None
    data = json.loads(raw)
    data["kind"] = StopKind(data["kind"])
    return StopReason(**data)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _guarded(
    doing: str,
) -> Callable[[Callable[Concatenate[ChatStore, P], R]], Callable[Concatenate[ChatStore, P], R]]:
    """Run a ChatStore method under its lock and turn sqlite3 errors into StoreErrors."""

    def decorate(
        method: Callable[Concatenate[ChatStore, P], R],
    ) -> Callable[Concatenate[ChatStore, P], R]:
        @functools.wraps(method)
        def wrapper(self: ChatStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
            with self._lock:
                if self._conn is None:
                    raise StoreError("The chat store is closed.", "", self.path)
                try:
                    return method(self, *args, **kwargs)
                except sqlite3.Error as error:
                    if self._conn.in_transaction:
                        with suppress(sqlite3.Error):
                            self._conn.execute("ROLLBACK")
                    raise translate_sqlite_error(error, self.path, doing) from error
                except (ValueError, TypeError, KeyError) as error:  # a stored value that does not decode
                    if self._conn.in_transaction:
                        with suppress(sqlite3.Error):
                            self._conn.execute("ROLLBACK")
                    raise StoreCorruptError(
                        f"Part of the chat database could not be read while {doing} ({error}).",
                        "Export the chats you need, then move the database aside and start a fresh one.",
                        self.path,
                    ) from error

        return wrapper

    return decorate


class ChatStore:
    """All chats in one SQLite file (or in memory). Thread-safe; every write is committed on return."""

    def __init__(
        self,
        path: Path | None,
        *,
        retention: EventRetention | None = None,
        busy_timeout_s: float = 2.0,
        check: bool = True,
    ) -> None:
        """Open (creating or upgrading) the database at ``path``; None = in memory.

        Raises StoreCorruptError, StoreLockedError, StoreVersionError or StoreError.
        ``check`` runs ``PRAGMA quick_check`` so damage is found at open, not mid-chat.
        """
        self.path = path
        self.retention = retention or EventRetention()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        target = ":memory:" if path is None else str(path)
        if path is not None:
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
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                target, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
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
        self._conn = conn

    @classmethod
    def in_memory(cls, *, retention: EventRetention | None = None) -> ChatStore:
        """A store that lives only for this session (the way on when the file cannot be used)."""
        return cls(None, retention=retention)

    @property
    def is_persistent(self) -> bool:
        """False for an in-memory store."""
        return self.path is not None

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ChatStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _db(self) -> sqlite3.Connection:
        assert self._conn is not None
        return self._conn

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

    # -- chats ------------------------------------------------------------------------------------

    @_guarded("creating a chat")
    def create_chat(self, title: str | None = None, params: SamplingParams | None = None) -> int:
        """A new empty chat; without a title it takes one from its first prompt. Returns its id."""
        stamp = _ts(now_utc())
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO chats (title, title_is_auto, created_at, updated_at, touched_at, last_params)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    title.strip() if title and title.strip() else DEFAULT_TITLE,
                    0 if title and title.strip() else 1,
                    stamp,
                    stamp,
                    stamp,
                    _params_json(params) if params else None,
                ),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def _require_chat(self, chat_id: int) -> tuple[Any, ...]:
        row = self._db.execute("SELECT id, title_is_auto FROM chats WHERE id = ?", (chat_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"Chat {chat_id} does not exist (it may have been deleted).", "", self.path)
        return row  # type: ignore[no-any-return]

    @_guarded("renaming a chat")
    def rename_chat(self, chat_id: int, title: str) -> None:
        """Give a chat a title of the user's choosing (it no longer follows the first prompt)."""
        title = " ".join(title.split())
        if not title:
            raise StoreError("A chat title cannot be empty.", "Type at least one character.", self.path)
        with self._transaction() as db:
            self._require_chat(chat_id)
            db.execute("UPDATE chats SET title = ?, title_is_auto = 0 WHERE id = ?", (title, chat_id))

    @_guarded("deleting a chat")
    def delete_chat(self, chat_id: int) -> None:
        """Delete a chat with its messages and token events."""
        with self._transaction() as db:
            self._require_chat(chat_id)
            db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))
        self._reclaim_space()

    @_guarded("saving the chat's parameters")
    def set_last_params(self, chat_id: int, params: SamplingParams) -> None:
        """Remember the parameters the chat's next reply should use."""
        with self._transaction() as db:
            self._require_chat(chat_id)
            db.execute("UPDATE chats SET last_params = ? WHERE id = ?", (_params_json(params), chat_id))

    def set_chat_mode(self, chat_id: int, mode: str) -> None:
        """``chat`` or ``completion`` (text completion) for this chat's next replies."""
        if mode not in CHAT_MODES:
            raise ValueError(f"chat mode must be one of {', '.join(CHAT_MODES)}, not {mode!r}")
        self._save_chat_mode(chat_id, mode)

    @_guarded("saving the chat's mode")
    def _save_chat_mode(self, chat_id: int, mode: str) -> None:
        with self._transaction() as db:
            self._require_chat(chat_id)
            db.execute("UPDATE chats SET mode = ? WHERE id = ?", (mode, chat_id))

    @_guarded("changing token-event retention")
    def set_keep_events(self, chat_id: int, keep: bool) -> None:
        """Keep this chat's token events regardless of the retention limits (or stop doing so)."""
        with self._transaction() as db:
            self._require_chat(chat_id)
            db.execute("UPDATE chats SET keep_events = ? WHERE id = ?", (int(keep), chat_id))

    @_guarded("listing chats")
    def list_chats(self, search: str | None = None, limit: int | None = None) -> list[ChatSummary]:
        """Chats, most recently updated first; ``search`` matches titles and message text (any case)."""
        params: list[Any] = []
        where = ""
        if search and search.strip():
            pattern = _like_pattern(search.strip())
            where = (
                "WHERE c.title LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages s"
                " WHERE s.chat_id = c.id AND s.text LIKE ? ESCAPE '\\')"
            )
            params += [pattern, pattern]
        sql = (
            "SELECT c.id, c.title, c.created_at, c.updated_at,"
            " (SELECT COUNT(*) FROM messages m WHERE m.chat_id = c.id),"
            " (SELECT m.text FROM messages m WHERE m.chat_id = c.id AND m.role = 'user'"
            "  ORDER BY m.position LIMIT 1)"
            f" FROM chats c {where} ORDER BY c.updated_at DESC, c.id DESC"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        summaries = []
        for chat_id, title, created, updated, count, first_prompt in self._db.execute(sql, params):
            snippet = self._snippet(chat_id, search.strip()) if search and search.strip() else None
            summaries.append(
                ChatSummary(
                    id=chat_id,
                    title=title,
                    created_at=_dt(created),
                    updated_at=_dt(updated),
                    message_count=count,
                    snippet=snippet if snippet is not None else " ".join((first_prompt or "").split())[:80],
                )
            )
        return summaries

    def _snippet(self, chat_id: int, search: str) -> str | None:
        row = self._db.execute(
            "SELECT text FROM messages WHERE chat_id = ? AND text LIKE ? ESCAPE '\\'"
            " ORDER BY position LIMIT 1",
            (chat_id, _like_pattern(search)),
        ).fetchone()
        if row is None:
            return None
        text = " ".join(row[0].split())
        at = text.lower().find(search.lower())
        if at < 0:
            return text[:80]
        start = max(0, at - 30)
        return ("…" if start else "") + text[start : at + len(search) + 50]

    @_guarded("loading a chat")
    def load_chat(self, chat_id: int) -> StoredChat:
        """A chat with all its messages and the parameters its next reply should use."""
        row = self._db.execute(
            "SELECT id, title, title_is_auto, created_at, updated_at, last_params, keep_events, mode"
            " FROM chats WHERE id = ?",
            (chat_id,),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"Chat {chat_id} does not exist (it may have been deleted).", "", self.path)
        messages = []
        for m in self._db.execute(
            "SELECT m.id, m.position, m.role, m.text, m.created_at, m.status,"
            " r.params, r.model, r.seed, r.stop, r.stop_label, r.token_count, r.tokens_per_s,"
            " r.prompt_tokens, r.prompt_evaluated, r.prompt_ms, r.first_token_ms, r.decode_ms, r.finished_at,"
            " r.message_id IS NOT NULL, e.message_id IS NOT NULL, m.sibling_ordinal, m.branched_at,"
            " (SELECT COUNT(*) FROM reply_siblings s WHERE s.message_id = m.id)"
            " FROM messages m LEFT JOIN replies r ON r.message_id = m.id"
            " LEFT JOIN token_events e ON e.message_id = m.id"
            " WHERE m.chat_id = ? ORDER BY m.position",
            (chat_id,),
        ):
            reply = None
            if m[19]:
                reply = StoredReply(
                    params=_load_params_map(m[6]),
                    model=ModelRef.model_validate_json(m[7]) if m[7] else None,
                    seed=m[8],
                    stop=_load_stop(m[9]),
                    stop_label=m[10],
                    token_count=m[11],
                    tokens_per_s=m[12],
                    prompt_tokens=m[13],
                    prompt_evaluated=m[14],
                    prompt_ms=m[15],
                    first_token_ms=m[16],
                    decode_ms=m[17],
                    finished_at=_dt(m[18]) if m[18] else None,
                )
            messages.append(
                StoredMessage(
                    id=m[0],
                    position=m[1],
                    role=Role(m[2]),
                    text=m[3],
                    created_at=_dt(m[4]),
                    status=MessageStatus(m[5]),
                    reply=reply,
                    has_events=bool(m[20]),
                    sibling_ordinal=m[21],
                    branched_at=m[22],
                    sibling_count=m[23] + 1,
                )
            )
        return StoredChat(
            id=row[0],
            title=row[1],
            title_is_auto=bool(row[2]),
            created_at=_dt(row[3]),
            updated_at=_dt(row[4]),
            last_params=_load_params(row[5]),
            keep_events=bool(row[6]),
            messages=tuple(messages),
            mode=row[7],
        )

    # -- messages ---------------------------------------------------------------------------------

    def _insert_message(
        self, db: sqlite3.Connection, chat_id: int, role: Role, text: str, status: MessageStatus
    ) -> tuple[int, str]:
        chat = self._require_chat(chat_id)
        stamp = _ts(now_utc())
        (position,) = db.execute(
            "SELECT COALESCE(MAX(position) + 1, 0) FROM messages WHERE chat_id = ?", (chat_id,)
        ).fetchone()
        if role is Role.USER and chat[1]:
            has_prompt = db.execute(
                "SELECT 1 FROM messages WHERE chat_id = ? AND role = 'user' LIMIT 1", (chat_id,)
            ).fetchone()
            if has_prompt is None:
                db.execute("UPDATE chats SET title = ? WHERE id = ?", (title_from_prompt(text), chat_id))
        cursor = db.execute(
            "INSERT INTO messages (chat_id, position, role, text, created_at, status)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (chat_id, position, role.value, text, stamp, status.value),
        )
        db.execute("UPDATE chats SET updated_at = ?, touched_at = ? WHERE id = ?", (stamp, stamp, chat_id))
        assert cursor.lastrowid is not None
        return cursor.lastrowid, stamp

    @_guarded("saving a message")
    def add_message(self, chat_id: int, role: Role | str, text: str) -> int:
        """Append a finished message (system, user, or an assistant reply without metadata)."""
        try:
            role = Role(role)
        except ValueError:
            raise StoreError(f"Unknown message role {role!r}.", "Use system, user or assistant.") from None
        with self._transaction() as db:
            message_id, _ = self._insert_message(db, chat_id, role, text, MessageStatus.FINISHED)
            return message_id

    def add_user_message(self, chat_id: int, text: str) -> int:
        """Append the user's prompt (the first one names an untitled chat). Returns the message id."""
        return self.add_message(chat_id, Role.USER, text)

    @_guarded("starting a reply")
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
            message_id, _ = self._insert_message(db, chat_id, Role.ASSISTANT, "", MessageStatus.INTERRUPTED)
            db.execute(
                "INSERT INTO replies (message_id, params, model) VALUES (?, ?, ?)",
                (
                    message_id,
                    _params_map_json({params_version: params}),
                    model.model_dump_json() if model else None,
                ),
            )
            db.execute("UPDATE chats SET last_params = ? WHERE id = ?", (_params_json(params), chat_id))
            return message_id

    @_guarded("saving the partial reply")
    def update_assistant_text(self, message_id: int, text: str, token_count: int | None = None) -> None:
        """Save the partial text of a reply in progress (call it every second or so, not per token).

        A reply that is already finished is left as it is.
        """
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE messages SET text = ? WHERE id = ? AND role = 'assistant' AND status = 'interrupted'",
                (text, message_id),
            )
            if cursor.rowcount == 0:
                if db.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone() is None:
                    raise NotFoundError(f"Reply {message_id} does not exist.", "", self.path)
                return
            if token_count is not None:
                db.execute(
                    "UPDATE replies SET token_count = ? WHERE message_id = ?", (token_count, message_id)
                )

    @_guarded("saving the finished reply")
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
        stamp = _ts(now_utc())
        with self._transaction() as db:
            row = db.execute(
                "SELECT m.chat_id, r.params FROM messages m JOIN replies r ON r.message_id = m.id"
                " WHERE m.id = ?",
                (message_id,),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"Reply {message_id} does not exist.", "", self.path)
            chat_id, params_raw = row
            params = _load_params_map(params_raw)
            params.update(done.params)
            db.execute(
                "UPDATE messages SET text = ?, status = 'finished' WHERE id = ?", (done.text, message_id)
            )
            db.execute(
                "UPDATE replies SET params = ?, seed = ?, stop_kind = ?, stop_label = ?, stop = ?,"
                " token_count = ?, tokens_per_s = ?, prompt_tokens = ?, prompt_evaluated = ?, prompt_ms = ?,"
                " first_token_ms = ?, decode_ms = ?, finished_at = ? WHERE message_id = ?",
                (
                    _params_map_json(params),
                    done.seed,
                    done.stop.kind.value,
                    done.stop.label(),
                    _stop_json(done.stop),
                    done.generated,
                    done.tokens_per_s,
                    done.prompt_tokens,
                    done.prompt_evaluated,
                    done.prompt_ms,
                    done.first_token_ms,
                    done.decode_ms,
                    stamp,
                    message_id,
                ),
            )
            if model is not None:
                db.execute(
                    "UPDATE replies SET model = ? WHERE message_id = ?", (model.model_dump_json(), message_id)
                )
            if blob is not None:
                db.execute(
                    "INSERT OR REPLACE INTO token_events (message_id, encoding, n_events, data, stored_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (message_id, events_codec.ENCODING, len(events or ()), blob, stamp),
                )
            db.execute(
                "UPDATE chats SET updated_at = ?, touched_at = ?, last_params = ? WHERE id = ?",
                (stamp, stamp, _params_json(params[max(params)]), chat_id),
            )
        if blob is not None:
            try:
                self._prune_events()
            except sqlite3.Error as error:  # the reply is committed; pruning can wait
                log.warning("pruning token events failed: %s", error)

    @_guarded("removing messages")
    def truncate_chat(self, chat_id: int, keep: int) -> None:
        """Delete every message from position ``keep`` on (regenerate, edit and resend)."""
        with self._transaction() as db:
            self._require_chat(chat_id)
            db.execute("DELETE FROM messages WHERE chat_id = ? AND position >= ?", (chat_id, keep))
            stamp = _ts(now_utc())
            db.execute(
                "UPDATE chats SET updated_at = ?, touched_at = ? WHERE id = ?", (stamp, stamp, chat_id)
            )

    # -- branch siblings --------------------------------------------------------------------------

    @_guarded("saving the reply's branches")
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
        with self._transaction() as db:
            row = db.execute(
                "SELECT 1 FROM messages WHERE id = ? AND role = 'assistant'", (message_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"Reply {message_id} does not exist.", "", self.path)
            db.execute(
                "UPDATE messages SET sibling_ordinal = ?, branched_at = ? WHERE id = ?",
                (ordinal, branched_at, message_id),
            )
            db.execute("DELETE FROM reply_siblings WHERE message_id = ?", (message_id,))
            _insert_siblings(
                db,
                message_id,
                [
                    (s.ordinal, s.text, s.status, s.reply, s.branched_at, blob, len(s.events or ()))
                    for s, blob in zip(others, blobs, strict=True)
                ],
            )

    @_guarded("loading the reply's branches")
    def load_siblings(self, message_id: int) -> list[StoredSibling]:
        """The other continuations of reply ``message_id``, in order (empty: never branched)."""
        siblings = []
        for ordinal, text, status, reply, branched_at, rows in self._sibling_rows(message_id):
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

    @_guarded("loading the reply's branches")
    def _sibling_rows(self, message_id: int) -> list[SiblingRows]:
        result: list[SiblingRows] = []
        for ordinal, text, status, reply, branched_at, encoding, blob in self._db.execute(
            "SELECT ordinal, text, status, reply, branched_at, encoding, events FROM reply_siblings"
            " WHERE message_id = ? ORDER BY ordinal",
            (message_id,),
        ):
            rows = None
            if blob is not None and encoding == events_codec.ENCODING:
                try:
                    rows = events_codec.unpack_rows(blob)
                except (ValueError, zlib.error) as error:
                    log.warning("token events of a branch of message %s unreadable: %s", message_id, error)
            reply_facts = StoredReply.model_validate_json(reply)
            result.append((ordinal, text, MessageStatus(status), reply_facts, branched_at, rows))
        return result

    # -- token events -----------------------------------------------------------------------------

    @_guarded("loading token events")
    def load_events(self, message_id: int) -> tuple[TokenEvent, ...] | None:
        """A reply's token events, or None when they were not kept (or pruned, or unreadable)."""
        try:
            rows = self._event_rows(message_id)
            return None if rows is None else events_codec.rows_to_events(rows)
        except (ValueError, TypeError, zlib.error) as error:
            log.warning("token events of message %s unreadable: %s", message_id, error)
            return None

    @_guarded("measuring token events")
    def events_bytes(self) -> int:
        """Total compressed size of the stored token events."""
        (total,) = self._db.execute("SELECT COALESCE(SUM(length(data)), 0) FROM token_events").fetchone()
        return int(total)

    def _prune_events(self) -> None:
        """Drop token events outside the retention limits (kept chats excepted)."""
        keep = self.retention
        with self._transaction() as db:
            db.execute(
                "DELETE FROM token_events WHERE message_id IN ("
                " SELECT m.id FROM messages m JOIN chats c ON c.id = m.chat_id"
                " WHERE c.keep_events = 0 AND c.id NOT IN ("
                "  SELECT id FROM chats ORDER BY touched_at DESC, id DESC LIMIT ?))",
                (keep.keep_chats,),
            )
            db.execute(  # the branches' events follow the same rule: recent or kept chats only
                "UPDATE reply_siblings SET events = NULL, encoding = NULL, n_events = 0"
                " WHERE events IS NOT NULL AND message_id IN ("
                " SELECT m.id FROM messages m JOIN chats c ON c.id = m.chat_id"
                " WHERE c.keep_events = 0 AND c.id NOT IN ("
                "  SELECT id FROM chats ORDER BY touched_at DESC, id DESC LIMIT ?))",
                (keep.keep_chats,),
            )
            rows = db.execute(
                "SELECT e.message_id, length(e.data) FROM token_events e"
                " JOIN messages m ON m.id = e.message_id JOIN chats c ON c.id = m.chat_id"
                " WHERE c.keep_events = 0 ORDER BY e.stored_at DESC, e.message_id DESC"
            ).fetchall()
            total = 0
            doomed = []
            for message_id, size in rows:
                total += size
                if total > keep.max_bytes:
                    doomed.append((message_id,))
            db.executemany("DELETE FROM token_events WHERE message_id = ?", doomed)
        self._reclaim_space()

    def _reclaim_space(self) -> None:
        if self.path is not None:
            self._db.execute("PRAGMA incremental_vacuum").fetchall()

    # -- export / import --------------------------------------------------------------------------

    def export_markdown(self, chat_id: int) -> str:
        """The chat as readable Markdown, with a parameter line and stop reason under each reply."""
        from tui.store.export import chat_to_markdown

        return chat_to_markdown(self.load_chat(chat_id))

    def export_json(self, chat_id: int, *, include_events: bool = True) -> dict[str, Any]:
        """The complete chat as a JSON-able dict (versioned format, see :mod:`tui.store.export`)."""
        from tui.store.export import chat_to_export

        chat = self.load_chat(chat_id)
        events: dict[int, list[list[Any]]] = {}
        siblings: dict[int, list[SiblingRows]] = {}
        for message in chat.messages:
            if message.sibling_count > 1:
                siblings[message.id] = [
                    (*r[:5], r[5] if include_events else None) for r in self._sibling_rows(message.id)
                ]
        if include_events:
            for message in chat.messages:
                if message.has_events:
                    try:
                        rows = self._event_rows(message.id)
                    except (ValueError, zlib.error) as error:
                        log.warning("token events of message %s left out: %s", message.id, error)
                        continue
                    if rows is not None:
                        events[message.id] = rows
        return chat_to_export(chat, events, siblings)

    @_guarded("loading token events")
    def _event_rows(self, message_id: int) -> list[list[Any]] | None:
        row = self._db.execute(
            "SELECT encoding, data FROM token_events WHERE message_id = ?", (message_id,)
        ).fetchone()
        if row is None or row[0] != events_codec.ENCODING:
            return None
        return events_codec.unpack_rows(row[1])

    @_guarded("importing a chat")
    def import_json(self, data: Mapping[str, Any] | str | bytes) -> int:
        """Add a chat from :meth:`export_json` output (dict or JSON text). Returns the new chat id.

        Raises ImportFormatError (a StoreError) with a clear message when the data is not an export.
        """
        from tui.store.export import parse_export

        export = parse_export(data)
        chat = export.chat
        touched = _ts(now_utc())
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO chats (title, title_is_auto, created_at, updated_at, touched_at, last_params,"
                " keep_events, mode) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    chat.title,
                    int(chat.title_is_auto),
                    _ts(chat.created_at),
                    _ts(chat.updated_at),
                    touched,
                    _params_json(chat.last_params) if chat.last_params else None,
                    int(chat.keep_events),
                    chat.mode,
                ),
            )
            chat_id = cursor.lastrowid
            for position, message in enumerate(export.messages):
                cursor = db.execute(
                    "INSERT INTO messages (chat_id, position, role, text, created_at, status,"
                    " sibling_ordinal, branched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        chat_id,
                        position,
                        message.role.value,
                        message.text,
                        _ts(message.created_at),
                        message.status.value,
                        message.sibling_ordinal,
                        message.branched_at,
                    ),
                )
                message_id = cursor.lastrowid
                assert message_id is not None
                _insert_siblings(
                    db,
                    message_id,
                    [
                        (
                            s.ordinal,
                            s.text,
                            s.status,
                            s.reply,
                            s.branched_at,
                            events_codec.pack_rows(s.token_events.rows) if s.token_events else None,
                            len(s.token_events.rows) if s.token_events else 0,
                        )
                        for s in message.siblings
                    ],
                )
                reply = message.reply
                if reply is not None:
                    db.execute(
                        "INSERT INTO replies (message_id, params, model, seed, stop_kind, stop_label, stop,"
                        " token_count, tokens_per_s, prompt_tokens, prompt_evaluated, prompt_ms,"
                        " first_token_ms, decode_ms, finished_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            message_id,
                            _params_map_json(reply.params),
                            reply.model.model_dump_json() if reply.model else None,
                            reply.seed,
                            reply.stop.kind.value if reply.stop else None,
                            reply.stop_label,
                            _stop_json(reply.stop) if reply.stop else None,
                            reply.token_count,
                            reply.tokens_per_s,
                            reply.prompt_tokens,
                            reply.prompt_evaluated,
                            reply.prompt_ms,
                            reply.first_token_ms,
                            reply.decode_ms,
                            _ts(reply.finished_at) if reply.finished_at else None,
                        ),
                    )
                if message.token_events is not None:
                    db.execute(
                        "INSERT INTO token_events (message_id, encoding, n_events, data, stored_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (
                            message_id,
                            events_codec.ENCODING,
                            len(message.token_events.rows),
                            events_codec.pack_rows(message.token_events.rows),
                            touched,
                        ),
                    )
        assert chat_id is not None
        return chat_id


_SiblingInsert = tuple[int, str, MessageStatus, StoredReply, int | None, bytes | None, int]


def _insert_siblings(db: sqlite3.Connection, message_id: int, siblings: Sequence[_SiblingInsert]) -> None:
    """Insert the branch siblings of one message (ordinal, text, status, reply, branched_at, blob, n)."""
    db.executemany(
        "INSERT INTO reply_siblings (message_id, ordinal, text, status, reply, branched_at,"
        " encoding, n_events, events) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                message_id,
                ordinal,
                text,
                status.value,
                reply.model_dump_json(),
                branched_at,
                events_codec.ENCODING if blob is not None else None,
                n_events if blob is not None else 0,
                blob,
            )
            for ordinal, text, status, reply, branched_at, blob, n_events in siblings
        ],
    )


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


def open_store(path: Path, *, recover_corrupt: bool = False, busy_timeout_s: float = 2.0) -> OpenedStore:
    """Open the chat database, never raising: a way on is always taken.

    Damaged file: with ``recover_corrupt`` it is moved aside and a fresh database started,
    else an in-memory store is used. Locked, newer version or unwritable: an in-memory store.
    ``problem`` carries the message to show.
    """
    try:
        return OpenedStore(ChatStore(path, busy_timeout_s=busy_timeout_s))
    except StoreCorruptError as error:
        if recover_corrupt:
            try:
                moved = move_aside(path)
                return OpenedStore(ChatStore(path, busy_timeout_s=busy_timeout_s), error, moved)
            except (OSError, StoreError) as second:
                log.warning("starting a fresh chat database failed: %s", second)
        return OpenedStore(ChatStore.in_memory(), error)
    except (StoreLockedError, StoreError) as error:
        return OpenedStore(ChatStore.in_memory(), error)
