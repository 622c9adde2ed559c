"""The chat store follows the conversation: an observer that saves each change, and the way back.

:class:`Autosave` turns every change of a :class:`~tui.core.conversation.Conversation` into the
:class:`~tui.store.session.ChatSession` call that saves it (a finished reply is committed, with
its branches, before the conversation's caller shows it). :func:`restore_chat` puts a stored chat
back into a conversation. No Textual here.
"""

from __future__ import annotations

from collections.abc import Sequence

from settings.sampling import SamplingParams
from tui.core.branches import BranchSet
from tui.core.comparison import Comparison
from tui.core.conversation import Conversation, ReplyTurn, SystemTurn, Turn, UserTurn
from tui.core.reply import ReplyRecord
from tui.engine.events import TokenEvent
from tui.store import Role, StoredChat, StoredMessage, StoreError
from tui.store.records import reply_done_of
from tui.store.session import ChatSession, SiblingReply


class Autosave:
    """Saves a conversation as it changes, through ``session`` (a ConversationObserver)."""

    def __init__(self, session: ChatSession) -> None:
        self.session = session

    def prompt_added(self, text: str, params: SamplingParams) -> None:
        """The prompt is saved (the first one creates the stored chat)."""
        self.session.user_message(text, params)

    def reply_started(self, record: ReplyRecord, params: SamplingParams, version: int) -> None:
        """Saved at once as 'interrupted' until it ends."""
        self.session.reply_started(record.reply_id, params, version)

    def reply_streamed(self, record: ReplyRecord) -> None:
        """The partial text, at most every ``partial_every_s``."""
        self.session.reply_progress(record.reply_id, lambda: record.streamed_text, len(record.events))

    def reply_finished(
        self, record: ReplyRecord, tokens: Sequence[TokenEvent], siblings: BranchSet | None
    ) -> None:
        """The reply is committed to disk, then its other branches with it."""
        if record.done is None:
            return
        self.session.reply_finished(record.reply_id, record.done, tokens)
        if siblings is not None:
            self._store_siblings(record, siblings)

    def turns_removed(self, keep: int) -> None:
        """The stored chat is cut after ``keep`` messages."""
        self.session.truncate(keep)

    def branch_shown(
        self, record: ReplyRecord, siblings: BranchSet, keep: int, params: SamplingParams, version: int
    ) -> None:
        """The shown sibling becomes the stored last reply; the others are stored with it."""
        done = record.done
        if done is None:
            return
        self.session.truncate(keep)
        self.session.reply_started(record.reply_id, params, version)
        self.session.reply_finished(record.reply_id, done, record.events)
        self._store_siblings(record, siblings)

    def params_changed(self, params: SamplingParams) -> None:
        """The chat reopens with these parameters."""
        self.session.params_changed(params)

    def cleared(self) -> None:
        """The next prompt starts a new stored chat."""
        self.session.new_chat()

    def comparison_recorded(self, comparison: Comparison) -> None:
        """Saved with the stored chat (nothing is saved before the chat's first prompt)."""
        self.session.comparison_finished(
            comparison.prompt,
            [(column.label, column.done) for column in comparison.columns],
            kept=comparison.kept,
            parting=comparison.parting,
            mode=comparison.mode,
        )

    def _store_siblings(self, record: ReplyRecord, siblings: BranchSet) -> bool:
        others = [
            SiblingReply(ordinal, other.done, other.events, siblings.branched_at.get(other.reply_id))
            for ordinal, other in enumerate(siblings.records)
            if other.reply_id != record.reply_id and other.done is not None
        ]
        return self.session.reply_siblings(
            record.reply_id,
            siblings.ordinal(record.reply_id),
            siblings.branched_at.get(record.reply_id),
            others,
        )


def restore_chat(conversation: Conversation, session: ChatSession, chat: StoredChat) -> list[str]:
    """Put the stored ``chat`` back into the (empty) ``conversation``: turns, token events, branches
    and last parameters. Returns the problems met on the way (shown as warnings; the chat opens)."""
    store = session.store
    problems: list[str] = []
    turns: list[Turn] = []
    branch_sets: list[tuple[list[ReplyRecord], int, dict[int, int]]] = []
    for stored in chat.messages:
        if stored.role is Role.USER:
            turns.append(UserTurn(stored.text))
        elif stored.role is Role.ASSISTANT:
            events = store.load_events(stored.id) if stored.has_events else None
            record = conversation.restored_reply(events or (), reply_done_of(stored, events))
            turns.append(ReplyTurn(record))
            try:
                siblings = _stored_siblings(conversation, session, record, stored)
            except StoreError as error:
                problems.append(f"The other branches of a reply could not be loaded: {error}")
                siblings = None
            if siblings is not None:
                branch_sets.append(siblings)
        else:
            turns.append(SystemTurn(stored.text))
    conversation.restore(turns, branch_sets, chat.last_params)
    return problems


def _stored_siblings(
    conversation: Conversation, session: ChatSession, record: ReplyRecord, stored: StoredMessage
) -> tuple[list[ReplyRecord], int, dict[int, int]] | None:
    """A reopened reply that had branches: its BranchSet (records in order, the shown one, branch points)."""
    if stored.sibling_count < 2:
        return None
    others = session.store.load_siblings(stored.id)
    if not others:
        return None
    entries: list[tuple[int, ReplyRecord, int | None]] = [
        (stored.sibling_ordinal, record, stored.branched_at)
    ]
    for other in others:
        sibling = conversation.restored_reply(other.events or (), other.reply_done())
        entries.append((other.ordinal, sibling, other.branched_at))
    entries.sort(key=lambda entry: entry[0])
    records = [entry[1] for entry in entries]
    branched_at = {r.reply_id: at for _, r, at in entries if at is not None}
    return records, records.index(record), branched_at
