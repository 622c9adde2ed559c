"""The Conversation: the one copy of the chat on screen (turns, reply records, reply ids, branches).

Everything else is derived from it or follows it: the history sent to the engine
(:meth:`Conversation.messages`), the chat store (an observer, see :mod:`tui.core.autosave`), and
the widgets (the app's flows render what an operation returns). No Textual here: it is tested
without a screen (tests/core/).

Every operation that changes the chat tells the observers at once, in the order they were added,
so the store is in step before the caller shows anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from settings.sampling import SamplingParams
from tui.core.branches import BranchBook, BranchSet, branch_event
from tui.core.comparison import Comparison
from tui.core.reply import ReplyRecord
from tui.engine.events import ChatMessage, ReplyDone, TokenEvent
from tui.engine.live import LiveParams


class ConversationError(Exception):
    """An operation that does not fit the conversation now (the UI checks first and says why)."""


@dataclass(frozen=True, slots=True)
class UserTurn:
    """A prompt the user sent."""

    text: str


@dataclass(frozen=True, slots=True)
class ReplyTurn:
    """An assistant reply (its record fills in while it streams)."""

    record: ReplyRecord


@dataclass(frozen=True, slots=True)
class SystemTurn:
    """A system message of a stored chat (imported ones may have one; it is not shown)."""

    text: str


Turn = UserTurn | ReplyTurn | SystemTurn


class ConversationObserver(Protocol):
    """Follows a conversation as it changes (the chat store's autosave implements it)."""

    def prompt_added(self, text: str, params: SamplingParams) -> None:
        """The user sent ``text``."""
        ...

    def reply_started(self, record: ReplyRecord, params: SamplingParams, version: int) -> None:
        """A reply is about to be generated with ``params`` (live version ``version``)."""
        ...

    def reply_streamed(self, record: ReplyRecord) -> None:
        """Tokens were added to ``record``."""
        ...

    def reply_finished(
        self, record: ReplyRecord, tokens: Sequence[TokenEvent], siblings: BranchSet | None
    ) -> None:
        """``record`` ended (``tokens``: all of its events); ``siblings``: its branches, if any."""
        ...

    def turns_removed(self, keep: int) -> None:
        """Every turn from position ``keep`` on was taken back."""
        ...

    def branch_shown(
        self, record: ReplyRecord, siblings: BranchSet, keep: int, params: SamplingParams, version: int
    ) -> None:
        """The last reply (after ``keep`` turns) was replaced by its sibling ``record`` (finished;
        it began with ``params``, version ``version``)."""
        ...

    def params_changed(self, params: SamplingParams) -> None:
        """The user changed the sampling parameters."""
        ...

    def cleared(self) -> None:
        """The conversation was emptied (a new chat)."""
        ...

    def comparison_recorded(self, comparison: Comparison) -> None:
        """A compare run on this chat ended (saved with the chat, kept column or not)."""
        ...


@dataclass(frozen=True, slots=True)
class Finished:
    """What :meth:`Conversation.finish_reply` did: the record (None: no longer in the conversation)."""

    record: ReplyRecord | None
    tokens: tuple[TokenEvent, ...]
    """Every token of the reply (a branch's fixed tokens first)."""


class Conversation:
    """The chat on screen: turns in order, every reply's record, its branches, the reply being generated."""

    def __init__(self, live: LiveParams, *, system_prompt: str = "") -> None:
        self.live = live
        """The parameters the token loop reads before every token (set through :meth:`set_params`)."""
        self.system_prompt = system_prompt
        self.params_by_version: dict[int, SamplingParams] = {live.version: live.params}
        """Every live parameter version set, so that a change can be described mid-reply."""
        self.turns: list[Turn] = []
        self.branches = BranchBook()
        self.active: ReplyRecord | None = None
        """The reply being generated (it may have left the conversation: a new chat while it ran)."""
        self._observers: list[ConversationObserver] = []
        self._next_reply_id = 1
        self._prefixes: dict[int, tuple[TokenEvent, ...]] = {}
        """Branch reply id -> its fixed tokens (until the reply finishes)."""

    def observe(self, observer: ConversationObserver) -> None:
        """Tell ``observer`` about every change from now on (after the ones added before it)."""
        self._observers.append(observer)

    # -- derived views -------------------------------------------------------------------
    @property
    def history(self) -> list[ChatMessage]:
        """The turns as the engine sees them (without the system prompt; a reply once it ended)."""
        messages: list[ChatMessage] = []
        for turn in self.turns:
            if isinstance(turn, UserTurn):
                messages.append(ChatMessage("user", turn.text))
            elif isinstance(turn, SystemTurn):
                messages.append(ChatMessage("system", turn.text))
            elif turn.record.done is not None:
                messages.append(ChatMessage("assistant", turn.record.done.text))
        return messages

    def messages(self) -> tuple[ChatMessage, ...]:
        """What the engine is sent for the next reply: the system prompt (the one place it is added),
        then the history."""
        system = (ChatMessage("system", self.system_prompt),) if self.system_prompt else ()
        return (*system, *self.history)

    @property
    def replies(self) -> list[ReplyRecord]:
        """The replies of the conversation, in order."""
        return [turn.record for turn in self.turns if isinstance(turn, ReplyTurn)]

    @property
    def records(self) -> dict[int, ReplyRecord]:
        """The replies of the conversation by id."""
        return {record.reply_id: record for record in self.replies}

    @property
    def last_reply(self) -> ReplyRecord | None:
        """The last turn's record, if the last turn is a reply."""
        last = self.turns[-1] if self.turns else None
        return last.record if isinstance(last, ReplyTurn) else None

    def record_of(self, reply_id: int) -> ReplyRecord | None:
        """A reply's record: in the conversation, or a sibling branch not shown now."""
        record = self.records.get(reply_id)
        if record is not None:
            return record
        siblings = self.branches.set_of(reply_id)
        if siblings is None:
            return None
        return next((r for r in siblings.records if r.reply_id == reply_id), None)

    def continue_from(self, record: ReplyRecord) -> tuple[int, ...]:
        """The token ids a reply starts with (a branch's fixed tokens; none for a fresh reply)."""
        return tuple(event.token_id for event in self._prefixes.get(record.reply_id, ()))

    @staticmethod
    def params_of(record: ReplyRecord, version: int) -> SamplingParams | None:
        """The parameters version ``version`` of a reply stood for."""
        if record.done is not None and version in record.done.params:
            return record.done.params[version]
        return record.params_by_version.get(version)

    # -- sending and streaming ------------------------------------------------------------
    def _notify(self) -> list[ConversationObserver]:
        return list(self._observers)

    def add_prompt(self, text: str) -> None:
        """The user sent ``text`` (a reply must not be running)."""
        self._refuse_while_active()
        self.turns.append(UserTurn(text))
        for observer in self._notify():
            observer.prompt_added(text, self.live.params)

    def start_reply(self, prefix: Sequence[TokenEvent] = ()) -> ReplyRecord:
        """Begin the assistant's reply to the history (``prefix``: a branch's fixed tokens)."""
        self._refuse_while_active()
        record = ReplyRecord(
            self._new_id(), list(prefix), params_by_version=self.params_by_version, fixed_tokens=len(prefix)
        )
        if prefix:
            self._prefixes[record.reply_id] = tuple(prefix)
        self.turns.append(ReplyTurn(record))
        self.active = record
        version, params = self.live.snapshot()
        for observer in self._notify():
            observer.reply_started(record, params, version)
        return record

    def stream(self, reply_id: int, tokens: Sequence[TokenEvent]) -> ReplyRecord | None:
        """Tokens of reply ``reply_id`` arrived; its record (None when it left the conversation)."""
        last = self.last_reply  # the streaming reply is the last turn: no search per token batch
        record = last if last is not None and last.reply_id == reply_id else self.records.get(reply_id)
        if record is None or not tokens:
            return record
        record.events.extend(tokens)
        for observer in self._notify():
            observer.reply_streamed(record)
        return record

    def finish_reply(self, reply_id: int, done: ReplyDone, tokens: Sequence[TokenEvent]) -> Finished:
        """Reply ``reply_id`` ended with ``done``; ``tokens``: what the engine generated.

        A branch's fixed tokens go first; the record gets its end; the observers (the store) get
        the whole reply. The record is returned while it is still in the conversation.
        """
        prefix = self._prefixes.pop(reply_id, ())
        full = (*prefix, *tokens)
        active = self.active if self.active is not None and self.active.reply_id == reply_id else None
        if active is not None:
            self.active = None
        shown = self.records.get(reply_id)
        record = shown or active
        if record is not None:
            record.done = done
            record.prompt_tokens = done.prompt_tokens
            if len(record.events) < len(full):
                record.events[:] = full
            siblings = self.branches.set_of(reply_id)
            for observer in self._notify():
                observer.reply_finished(record, full, siblings)
        return Finished(shown, full)

    def _refuse_while_active(self) -> None:
        if self.active is not None:
            raise ConversationError("a reply is being generated")

    def _new_id(self) -> int:
        reply_id = self._next_reply_id
        self._next_reply_id += 1
        return reply_id

    # -- taking back ----------------------------------------------------------------------
    def take_back_reply(self) -> ReplyRecord:
        """Remove the last reply (to generate it again)."""
        self._refuse_while_active()
        record = self.last_reply
        if record is None or record.done is None:
            raise ConversationError("there is no reply to regenerate")
        self.turns.pop()
        self._removed(len(self.turns))
        return record

    def edit_last(self) -> tuple[str, ReplyRecord | None]:
        """Remove the last prompt and its reply; returns the prompt's text and the removed reply."""
        self._refuse_while_active()
        reply = self.last_reply
        if reply is not None:
            self.turns.pop()
        last = self.turns[-1] if self.turns else None
        if not isinstance(last, UserTurn):
            raise ConversationError("there is no prompt to edit")
        self.turns.pop()
        self._removed(len(self.turns))
        return last.text, reply

    def truncate_after(self, reply_id: int) -> list[Turn]:
        """Remove every turn after reply ``reply_id`` (and the branches only they had); returns them."""
        self._refuse_while_active()
        keep = self._position(reply_id) + 1
        removed = self.turns[keep:]
        if removed:
            del self.turns[keep:]
            self._removed(keep)
            self.branches.keep_only(set(self.records))
        return removed

    def _removed(self, keep: int) -> None:
        for observer in self._notify():
            observer.turns_removed(keep)

    def _position(self, reply_id: int) -> int:
        for position, turn in enumerate(self.turns):
            if isinstance(turn, ReplyTurn) and turn.record.reply_id == reply_id:
                return position
        raise ConversationError(f"reply {reply_id} is not in the conversation")

    # -- branches -------------------------------------------------------------------------
    def branch(self, reply_id: int, index: int, token_id: int) -> tuple[ReplyRecord, BranchSet]:
        """Continue the last reply ``reply_id`` with candidate ``token_id`` at token ``index``.

        The reply leaves the conversation and stays a sibling of the new one (returned, started;
        its fixed tokens: the old ones before ``index`` plus the pick). Earlier replies are branched
        after :meth:`truncate_after`.
        """
        self._refuse_while_active()
        original = self.last_reply
        if original is None or original.reply_id != reply_id:
            raise ConversationError("only the last reply can be branched (truncate after it first)")
        if original.done is None:
            raise ConversationError("that reply is not finished")
        prefix = (*original.events[:index], branch_event(original.events[index], token_id))
        self.turns.pop()
        self._removed(len(self.turns))
        record = self.start_reply(prefix)
        return record, self.branches.add(original, record, index)

    def add_finished_replies(
        self,
        replies: Sequence[tuple[ReplyDone, Sequence[TokenEvent]]],
        shown: int,
        *,
        previous: ReplyRecord | None = None,
    ) -> tuple[ReplyRecord, BranchSet | None]:
        """Finished replies to the last prompt, made elsewhere (a compare's columns): reply ``shown``
        becomes the last turn and the others its branches (siblings, in this order); the store
        saves them all. Returns the shown record and its BranchSet (None for a single reply).

        ``previous``: the reply this prompt had before (taken back by the caller to make room):
        it, and the branches it had, stay as the first siblings, so nothing is lost.
        """
        self._refuse_while_active()
        if not 0 <= shown < len(replies):
            raise ConversationError(f"no reply {shown} among {len(replies)}")
        last = self.turns[-1] if self.turns else None
        if not isinstance(last, UserTurn):
            raise ConversationError("the replies need a prompt before them")
        earlier: list[ReplyRecord] = []
        branched_at: dict[int, int] = {}
        if previous is not None:
            old = self.branches.set_of(previous.reply_id)
            earlier = list(old.records) if old is not None else [previous]
            branched_at = dict(old.branched_at) if old is not None else {}
        done, tokens = replies[shown]
        record = self.start_reply()
        siblings = None
        if len(replies) + len(earlier) > 1:
            records = [
                record if place == shown else self.restored_reply(events, other)
                for place, (other, events) in enumerate(replies)
            ]
            siblings = self.branches.restore([*earlier, *records], len(earlier) + shown, branched_at)
        self.finish_reply(record.reply_id, done, tokens)
        return record, siblings

    def record_comparison(self, comparison: Comparison) -> None:
        """A compare run on this chat ended: the observers (the store) keep it with the chat."""
        for observer in self._notify():
            observer.comparison_recorded(comparison)

    def switch_branch(self, delta: int) -> tuple[ReplyRecord, BranchSet] | None:
        """Show the sibling ``delta`` places on from the last reply; None if it has no branches.

        The sibling shown (finished) replaces the last reply; the store follows.
        """
        self._refuse_while_active()
        last = self.last_reply
        siblings = self.branches.set_of(last.reply_id) if last is not None else None
        if siblings is None or len(siblings.records) < 2:
            return None
        siblings.active = (siblings.active + delta) % len(siblings.records)
        target = siblings.records[siblings.active]
        done = target.done
        if done is None:
            return None
        self.turns[-1] = ReplyTurn(target)
        version = min(done.params) if done.params else 0
        params = done.params.get(version, self.live.params)
        for observer in self._notify():
            observer.branch_shown(target, siblings, len(self.turns) - 1, params, version)
        return target, siblings

    # -- parameters -----------------------------------------------------------------------
    def set_params(self, params: SamplingParams, *, announce: bool = True) -> int:
        """New live parameters (the next token uses them); returns their version.

        ``announce=False``: a chat being reopened with its own parameters (nothing to save).
        """
        version = self.live.set(params)
        self.params_by_version[version] = params
        if announce:
            for observer in self._notify():
                observer.params_changed(params)
        return version

    # -- a new or reopened chat -----------------------------------------------------------
    def clear(self) -> None:
        """Empty the conversation (a reply still running finishes into the chat it belonged to)."""
        self.turns.clear()
        self.branches.clear()
        active = self.active
        self._prefixes = {
            reply_id: prefix
            for reply_id, prefix in self._prefixes.items()
            if active is not None and reply_id == active.reply_id
        }
        for observer in self._notify():
            observer.cleared()

    def restored_reply(self, events: Iterable[TokenEvent], done: ReplyDone) -> ReplyRecord:
        """A finished reply of a stored chat, with a fresh reply id (add it with :meth:`restore`)."""
        return ReplyRecord(self._new_id(), list(events), dict(done.params), done.prompt_tokens, done)

    def restore(
        self,
        turns: Sequence[Turn],
        branch_sets: Sequence[tuple[list[ReplyRecord], int, dict[int, int]]] = (),
        params: SamplingParams | None = None,
    ) -> None:
        """Put back a stored chat (after :meth:`clear`): its turns, branches and last parameters.

        Nothing is told to the observers: the store has all of it already.
        """
        self._refuse_while_active()
        if self.turns:
            raise ConversationError("restore into an empty conversation")
        self.turns.extend(turns)
        for records, active, branched_at in branch_sets:
            self.branches.restore(records, active, branched_at)
        if params is not None:
            self.set_params(params, announce=False)
