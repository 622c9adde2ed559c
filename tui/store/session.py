"""ChatSession: the chat on screen, mirrored into the ChatStore as it happens (no Textual here).

The app calls it at each step of a chat: a prompt sent, a reply started, streamed, finished, taken
back (regenerate, edit), parameters changed, a new or reopened chat. The chat is created in the
store with its first prompt, so empty chats never appear in the list. When a write fails (after
the store has waited out a lock held by another window), the session reports it once through
``on_error`` and stops saving that chat (so the stored chat never disagrees with the screen); a
new or reopened chat starts saving again.

Whether the chat is being saved, and why not, is :attr:`ChatSession.save_state` (``on_state`` is
called whenever it changes): in memory only, a failed write, the file deleted or replaced, or a
chat opened read-only because another window is writing it. A chat this window writes is
claimed in the store (see :mod:`tui.store.leases`), so another window opening it is told.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from settings.sampling import SamplingParams
from tui.engine.events import ReplyDone, TokenEvent
from tui.store.errors import NotFoundError, StoreError
from tui.store.fingerprint import fingerprint_model
from tui.store.leases import in_use_error
from tui.store.records import (
    ModelRef,
    StoredChat,
    StoredComparison,
    StoredComparisonColumn,
    StoredSibling,
    now_utc,
    stored_reply_of,
)
from tui.store.store import ChatStore

log = logging.getLogger(__name__)


class OpenMode(StrEnum):
    """How to open a stored chat (another window may be writing it)."""

    WRITE = "write"
    """Go on with it here (refused with ChatInUseError while another window writes it)."""
    COPY = "copy"
    """Go on with a copy of it (the other window keeps the original)."""
    READ_ONLY = "read-only"
    """Look at it; nothing done here is saved."""


@dataclass(frozen=True, slots=True)
class SaveState:
    """Whether the chat on screen is being saved; ``label`` and ``reason`` say why not."""

    saved: bool
    label: str = ""
    """A short word for the status bar ("not saved", "read-only")."""
    reason: str = ""
    """What happened and the way on (a notification, stderr)."""


SAVED = SaveState(True)


def in_memory_state(problem: StoreError | None) -> SaveState:
    """The state of a session on an in-memory store (``problem``: why the file is not used)."""
    why = f"{problem.message} {problem.hint}".strip() if problem else "The chat store is in memory."
    return SaveState(False, "not saved", f"Chats are kept in memory only and lost on quitting. {why}")


@dataclass(frozen=True, slots=True)
class SiblingReply:
    """Another continuation of a reply, as the app holds it (see ``ChatSession.reply_siblings``)."""

    ordinal: int
    done: ReplyDone
    events: Sequence[TokenEvent]
    branched_at: int | None = None


class ChatSession:
    """Autosave for the chat being shown. Call it from one thread (the UI thread)."""

    def __init__(
        self,
        store: ChatStore,
        *,
        on_error: Callable[[StoreError], None] | None = None,
        on_state: Callable[[SaveState], None] | None = None,
        problem: StoreError | None = None,
        partial_every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.problem = problem
        """Why the store is in memory (from ``open_store``), if it is."""
        self.on_state = on_state
        self.read_only = False
        """The chat was opened read-only (another window writes it): nothing is saved."""
        self._claimed: int | None = None
        self._written: set[int] = set()
        """Chats written by this session (what is lost if the file is gone)."""
        self._failed: set[int] = set()
        """Chats whose saving stopped after a failed write."""
        self._reported_detached = False
        self.chat_id: int | None = None
        self.mode = "chat"
        """The chat's mode (``chat`` or ``completion``), written when the stored chat is created."""
        """The stored chat being shown (None until the first prompt of a new chat)."""
        self.saving = True
        """False after a failed write, until the next new or reopened chat."""
        self.last_error: StoreError | None = None
        self.on_error = on_error
        self.partial_every_s = partial_every_s
        self._clock = clock
        self._replies: dict[int, int] = {}
        """App reply id -> stored message id, for replies begun in this chat."""
        self._finished: dict[int, int] = {}
        """App reply id -> stored message id, for replies finished in this chat."""
        self._last_partial: dict[int, float] = {}
        self._model: ModelRef | None = None
        self._model_lock = threading.Lock()
        self._last_state = self.save_state

    # -- the model ------------------------------------------------------------------------
    def set_model(self, path: Path, *, background: bool = True) -> threading.Thread | None:
        """Fingerprint the model file (in a background thread by default) for the replies' records."""

        def work() -> None:
            try:
                ref = fingerprint_model(path)
            except OSError as error:
                log.warning("cannot fingerprint %s: %s", path, error)
                return
            with self._model_lock:
                self._model = ref

        if not background:
            work()
            return None
        thread = threading.Thread(target=work, name="tokendial-fingerprint", daemon=True)
        thread.start()
        return thread

    @property
    def model(self) -> ModelRef | None:
        """The model file of the replies (None until fingerprinted)."""
        with self._model_lock:
            return self._model

    # -- one chat -------------------------------------------------------------------------
    # -- is it saved? ----------------------------------------------------------------------
    @property
    def save_state(self) -> SaveState:
        """Whether the chat on screen is being saved, and why not."""
        if not self.store.is_persistent:
            return in_memory_state(self.problem)
        if self.read_only:
            return SaveState(
                False,
                "read-only",
                "This chat is open in another tokendial window: nothing done here is saved. "
                "Open a copy from the chat list to go on with it here.",
            )
        if self.store.detached is not None:
            gone = self.store.detached
            return SaveState(False, "not saved", f"{gone.message} {gone.hint}")
        if not self.saving:
            error = self.last_error
            why = f"{error.message} {error.hint}".strip() if error else ""
            return SaveState(False, "not saved", f"This chat is no longer being saved. {why}".strip())
        return SAVED

    def _state_changed(self) -> None:
        state = self.save_state
        if state != self._last_state:
            self._last_state = state
            if self.on_state is not None:
                self.on_state(state)

    def poll(self) -> SaveState:
        """Look at the database file again (deleted or replaced?); the state (call it on a timer)."""
        if self.store.check_file() is not None:
            self._report_detached()
        self._state_changed()
        return self.save_state

    def _report_detached(self) -> None:
        gone = self.store.detached
        if gone is not None and not self._reported_detached:
            self._reported_detached = True
            if self.on_error is not None:
                self.on_error(gone)

    def unsaved_chats(self) -> list[int]:
        """Chats whose latest state is not in the database file (what quitting would lose)."""
        if not self.store.is_persistent:
            try:
                return sorted(c.id for c in self.store.list_chats())
            except StoreError:
                return []
        if self.store.detached is not None:
            return sorted(self._written | self._failed)
        return sorted(self._failed)

    # -- one chat -------------------------------------------------------------------------
    def _write(self, what: Callable[[], object]) -> bool:
        """Run a store write; False (reported once, saving stopped) when it failed or saving is off."""
        if not self.saving or self.read_only:
            return False
        try:
            what()
        except NotFoundError as error:  # e.g. the chat was deleted while its reply was running
            log.info("not saved: %s", error)
            return False
        except StoreError as error:
            self.saving = False
            self.last_error = error
            if self.chat_id is not None:
                self._failed.add(self.chat_id)
            log.warning("autosave stopped: %s", error)
            if error is self.store.detached:
                self._report_detached()
            elif self.on_error is not None:
                self.on_error(error)
            self._state_changed()
            return False
        if self.chat_id is not None:
            self._written.add(self.chat_id)
        return True

    def _release(self) -> None:
        claimed, self._claimed = self._claimed, None
        if claimed is not None:
            try:
                self.store.release_chat(claimed)
            except StoreError as error:  # it expires on its own
                log.info("chat %s not released: %s", claimed, error)

    def new_chat(self) -> None:
        """The screen was cleared: the next prompt starts a new stored chat.

        A reply still being generated (cancelled by the switch) is finished into its old chat.
        """
        self._release()
        self._reattach()
        self.chat_id = None
        self.saving = True
        self.read_only = False
        self._finished.clear()
        self._state_changed()

    def _reattach(self) -> None:
        """The database file was deleted or replaced: go on in the file now at its path (a fresh
        one, or the replacement), with this window's chats copied into it. Kept as it is when that
        fails (the chats stay exportable from the old file)."""
        old = self.store
        if old.detached is None or old.path is None:
            return
        try:
            fresh = ChatStore(
                old.path,
                retention=old.retention,
                busy_timeout_s=old.busy_timeout_s,
                lock_wait_s=old.lock_wait_s,
            )
        except StoreError as error:
            log.warning("no database to go on in after %s: %s", old.path, error)
            return
        try:
            for chat_id in sorted(self._written | self._failed):
                fresh.import_json(old.export_json(chat_id))
        except StoreError as error:
            log.warning("chats not copied into the new database: %s", error)
            fresh.close()
            return
        log.info(
            "chat database %s is back; %d chats copied into it", old.path, len(self._written | self._failed)
        )
        self._claimed = None
        old.close()
        self.store = fresh
        self._written.clear()
        self._failed.clear()
        self._reported_detached = False

    def open_chat(self, chat_id: int, mode: OpenMode | None = None) -> StoredChat:
        """Load a stored chat to show it; what follows is saved into it (or into its copy).

        Raises ChatInUseError (nothing changed) when another window writes it and ``mode`` is
        WRITE, or another StoreError. ``mode`` None claims the chat when it is free and opens it
        anyway when it is not (for callers that cannot yet ask the user).
        """
        chat = self.store.load_chat(chat_id)
        self.mode = chat.mode
        if mode is OpenMode.COPY:
            chat = self.store.load_chat(self.store.copy_chat(chat_id))
        holder = None
        if mode is not OpenMode.READ_ONLY:
            holder = self.store.claim_chat(chat.id)
            if holder is not None and mode is None:
                log.warning("chat %s is also open in %s", chat.id, holder.describe())
            elif holder is not None:
                raise in_use_error(chat.title, holder, self.store.path)
        if self._claimed == chat.id:
            self._claimed = None  # just claimed again: new_chat() must not drop it
        self.new_chat()
        self.chat_id = chat.id
        self.read_only = mode is OpenMode.READ_ONLY
        self._claimed = None if self.read_only or holder is not None else chat.id
        self._state_changed()
        return chat

    def _ensure_chat(self, params: SamplingParams) -> int:
        if self.chat_id is None:
            self.chat_id = self.store.create_chat(params=params)
            if self.mode != "chat":
                self.store.set_chat_mode(self.chat_id, self.mode)
            self.store.claim_chat(self.chat_id)
            self._claimed = self.chat_id
        return self.chat_id

    def user_message(self, text: str, params: SamplingParams) -> bool:
        """The user sent a prompt (creates the stored chat with the first one). True if saved."""
        return self._write(lambda: self.store.add_user_message(self._ensure_chat(params), text))

    def reply_started(self, reply_id: int, params: SamplingParams, version: int = 0) -> bool:
        """A reply is about to be generated: saved at once as 'interrupted'. True if saved."""

        def write() -> None:
            message_id = self.store.begin_assistant_message(
                self._ensure_chat(params), params, self.model, params_version=version
            )
            self._replies[reply_id] = message_id
            self._last_partial[reply_id] = self._clock()

        return self._write(write)

    def reply_progress(self, reply_id: int, text: str | Callable[[], str], token_count: int) -> bool:
        """Tokens streamed: the partial text is saved at most every ``partial_every_s``. True if saved.

        ``text`` may be a callable, called only when a save is due.
        """
        message_id = self._replies.get(reply_id)
        if message_id is None:
            return False
        now = self._clock()
        if now - self._last_partial.get(reply_id, 0.0) < self.partial_every_s:
            return False
        self._last_partial[reply_id] = now
        return self._write(
            lambda: self.store.update_assistant_text(
                message_id, text() if callable(text) else text, token_count
            )
        )

    def reply_finished(self, reply_id: int, done: ReplyDone, tokens: Sequence[TokenEvent]) -> bool:
        """The reply ended: committed to disk when this returns (call before showing it finished).

        True when it was saved.
        """
        message_id = self._replies.pop(reply_id, None)
        self._last_partial.pop(reply_id, None)
        if message_id is None:
            return False
        self._finished[reply_id] = message_id
        return self._write(lambda: self.store.finish_assistant_message(message_id, done, tokens, self.model))

    def reply_siblings(
        self, reply_id: int, ordinal: int, branched_at: int | None, others: Sequence[SiblingReply]
    ) -> bool:
        """The finished reply ``reply_id`` is one of several continuations (its place: ``ordinal``):
        store the others with it, so that they come back when the chat is reopened. True if saved."""
        message_id = self._finished.get(reply_id)
        if message_id is None:
            return False
        model = self.model
        siblings = [
            StoredSibling(
                ordinal=other.ordinal,
                text=other.done.text,
                reply=stored_reply_of(other.done, model),
                branched_at=other.branched_at,
                events=tuple(other.events) if other.events else None,
            )
            for other in others
        ]
        return self._write(lambda: self.store.set_siblings(message_id, ordinal, branched_at, siblings))

    def comparison_finished(
        self,
        prompt: str,
        columns: Sequence[tuple[str, ReplyDone]],
        *,
        kept: int | None = None,
        parting: str | None = None,
        mode: str = "chat",
    ) -> bool:
        """A compare run on this chat ended: save it with the stored chat (each column's label and
        reply facts). True if saved; a chat not stored yet (no prompt sent) saves nothing."""
        chat_id = self.chat_id
        if chat_id is None or not columns:
            return False
        model = self.model
        comparison = StoredComparison(
            prompt=prompt,
            columns=tuple(
                StoredComparisonColumn(label=label, text=done.text, reply=stored_reply_of(done, model))
                for label, done in columns
            ),
            mode="completion" if mode == "completion" else "chat",
            kept=kept,
            parting=parting,
            created_at=now_utc(),
        )
        return self._write(lambda: self.store.add_comparison(chat_id, comparison))

    def message_id_of(self, reply_id: int) -> int | None:
        """The stored message id of app reply ``reply_id`` (None: not saved in this chat)."""
        return self._replies.get(reply_id, self._finished.get(reply_id))

    def truncate(self, keep: int) -> None:
        """Messages from position ``keep`` on were taken back (regenerate, edit the last prompt)."""
        chat_id = self.chat_id
        if chat_id is not None:
            self._write(lambda: self.store.truncate_chat(chat_id, keep))

    def mode_changed(self, mode: str) -> None:
        """The chat switched to ``mode`` (``chat`` or ``completion``); saved at once if it is stored."""
        self.mode = mode
        chat_id = self.chat_id
        if chat_id is not None:
            self._write(lambda: self.store.set_chat_mode(chat_id, mode))

    def params_changed(self, params: SamplingParams) -> None:
        """The user changed the parameters: the chat reopens with them."""
        chat_id = self.chat_id
        if chat_id is not None:
            self._write(lambda: self.store.set_last_params(chat_id, params))
