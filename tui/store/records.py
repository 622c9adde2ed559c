"""What the store hands back: chats, messages and reply metadata as frozen pydantic models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from settings.sampling import SamplingParams
from tui.engine.events import ChatMessage, ReplyDone, StopKind, StopReason, TokenEvent


def now_utc() -> datetime:
    """The current time, timezone-aware UTC (what every stored timestamp is)."""
    return datetime.now(UTC)


class Role(StrEnum):
    """Who wrote a message."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class MessageStatus(StrEnum):
    """Whether a message is complete."""

    FINISHED = "finished"
    """Written completely (an assistant reply: ReplyDone was stored)."""
    INTERRUPTED = "interrupted"
    """An assistant reply whose generation never reported its end (app killed, crash)."""


class FingerprintKind(StrEnum):
    """How a model file was fingerprinted."""

    SHA256 = "sha256"
    """sha256 of the whole file."""
    QUICK = "quick-sha256"
    """sha256 of the size, the first MiB and the last MiB (files too big to hash quickly)."""


class ModelRef(BaseModel):
    """The model file that produced a reply."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    """Absolute path of the GGUF file at the time of the reply."""
    fingerprint: str
    """Hex digest, see ``fingerprint_kind``."""
    fingerprint_kind: FingerprintKind
    size: int
    """File size in bytes."""
    mtime: float
    """Modification time (seconds since the epoch) when fingerprinted."""

    @property
    def file_name(self) -> str:
        """The file's name without its directory."""
        return self.path.replace("\\", "/").rsplit("/", 1)[-1]


class StoredReply(BaseModel):
    """Everything recorded about one assistant reply besides its text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    params: dict[int, SamplingParams]
    """Every parameter version used, by version number (several if changed mid-reply)."""
    model: ModelRef | None = None
    seed: int | None = None
    """The seed actually used (None until the reply finished)."""
    stop: StopReason | None = None
    """Why the reply ended (None while interrupted)."""
    stop_label: str | None = None
    """``stop.label()`` as shown when the reply finished."""
    token_count: int = 0
    tokens_per_s: float | None = None
    prompt_tokens: int | None = None
    prompt_evaluated: int | None = None
    prompt_ms: float | None = None
    first_token_ms: float | None = None
    decode_ms: float | None = None
    finished_at: datetime | None = None

    @property
    def last_params(self) -> SamplingParams | None:
        """The highest parameter version used (what the reply ended with)."""
        return self.params[max(self.params)] if self.params else None


class StoredMessage(BaseModel):
    """One message of a stored chat."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    position: int
    """0-based place in the chat."""
    role: Role
    text: str
    created_at: datetime
    status: MessageStatus = MessageStatus.FINISHED
    reply: StoredReply | None = None
    """Assistant replies only."""
    has_events: bool = False
    """Token events are stored for it (``ChatStore.load_events``)."""
    sibling_ordinal: int = 0
    """Its place among the continuations of this reply (0 when it was never branched)."""
    sibling_count: int = 1
    """How many continuations this reply has, itself included (``ChatStore.load_siblings``)."""
    branched_at: int | None = None
    """The token index where this continuation branched off (None: not a branch)."""


INTERRUPTED_MESSAGE = "reply interrupted: tokendial was closed mid-reply (partial text kept)"


@dataclass(frozen=True, slots=True)
class StoredSibling:
    """Another continuation of a stored reply (a branch not shown): what ``ChatStore.load_siblings``
    returns and ``ChatStore.set_siblings`` takes."""

    ordinal: int
    """Its place among the continuations (the shown message has its own ``sibling_ordinal``)."""
    text: str
    reply: StoredReply
    status: MessageStatus = MessageStatus.FINISHED
    branched_at: int | None = None
    """The token index where it branched off (None: the original continuation)."""
    events: tuple[TokenEvent, ...] | None = None
    """Its token events (None when not kept)."""

    def reply_done(self) -> ReplyDone:
        """The ReplyDone it stands for (to show it again)."""
        return _reply_done(self.reply, self.status, self.text, self.events)


def stored_reply_of(done: ReplyDone, model: ModelRef | None = None) -> StoredReply:
    """The stored facts of a finished reply (what ``finish_assistant_message`` records)."""
    return StoredReply(
        params=dict(done.params),
        model=model,
        seed=done.seed,
        stop=done.stop,
        stop_label=done.stop.label(),
        token_count=done.generated,
        tokens_per_s=done.tokens_per_s,
        prompt_tokens=done.prompt_tokens,
        prompt_evaluated=done.prompt_evaluated,
        prompt_ms=done.prompt_ms,
        first_token_ms=done.first_token_ms,
        decode_ms=done.decode_ms,
        finished_at=now_utc(),
    )


def reply_done_of(message: StoredMessage, events: Sequence[TokenEvent] | None = None) -> ReplyDone:
    """The ReplyDone a stored assistant reply stands for (to show it again, badge included).

    An interrupted reply gets an ERROR stop saying so. Token ids come from the events when kept.
    """
    return _reply_done(message.reply, message.status, message.text, events)


def _reply_done(
    stored: StoredReply | None, status: MessageStatus, text: str, events: Sequence[TokenEvent] | None
) -> ReplyDone:
    reply = stored or StoredReply(params={})
    stop = reply.stop
    if stop is None or status is MessageStatus.INTERRUPTED:
        stop = StopReason(StopKind.ERROR, generated=reply.token_count, message=INTERRUPTED_MESSAGE)
    token_ids = tuple(e.token_id for e in events) if events else tuple(range(reply.token_count))
    return ReplyDone(
        stop=stop,
        text=text,
        token_ids=token_ids,
        prompt_tokens=reply.prompt_tokens or 0,
        prompt_evaluated=reply.prompt_evaluated or 0,
        prompt_ms=reply.prompt_ms or 0.0,
        first_token_ms=reply.first_token_ms,
        decode_ms=reply.decode_ms or 0.0,
        seed=reply.seed if reply.seed is not None else -1,
        params=dict(reply.params),
    )


class StoredComparisonColumn(BaseModel):
    """One column of a saved comparison: its label, text and reply facts (parameters, stop, count)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    text: str
    reply: StoredReply


class StoredComparison(BaseModel):
    """A compare run saved with its chat (``ChatStore.add_comparison`` / ``load_comparisons``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str
    columns: tuple[StoredComparisonColumn, ...]
    mode: Literal["chat", "completion"] = "chat"
    """How the prompt was run: the chat template, or the text continued as it is."""
    kept: int | None = None
    """The column kept as the chat's reply (None: none was)."""
    parting: str | None = None
    """Where the columns parted, as the compare view said it."""
    after_messages: int = 0
    """How many messages the chat had when the comparison was saved."""
    created_at: datetime

    @model_validator(mode="after")
    def _kept_is_a_column(self) -> StoredComparison:
        if not self.columns:
            raise ValueError("a comparison has at least one column")
        if self.kept is not None and not 0 <= self.kept < len(self.columns):
            raise ValueError(f"kept column {self.kept} is not one of the {len(self.columns)} columns")
        return self


class StoredChat(BaseModel):
    """A chat with all its messages, as ``ChatStore.load_chat`` returns it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    title: str
    title_is_auto: bool
    """The title still follows the first prompt (not renamed by the user)."""
    created_at: datetime
    updated_at: datetime
    last_params: SamplingParams | None
    """The parameters the next reply should use (the last ones used or set)."""
    keep_events: bool
    """Token events of this chat are exempt from pruning."""
    messages: tuple[StoredMessage, ...]
    mode: str = "chat"
    """``chat`` (the chat template applies) or ``completion`` (the text is continued as it is)."""

    def engine_messages(self) -> list[ChatMessage]:
        """The conversation as the engine takes it (empty interrupted replies left out)."""
        return [
            ChatMessage(role=str(m.role), content=m.text)
            for m in self.messages
            if m.text or m.status is MessageStatus.FINISHED
        ]


class ChatSummary(BaseModel):
    """One row of the chat list."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    title: str
    created_at: datetime
    updated_at: datetime
    message_count: int
    snippet: str
    """The matching text when searching, else the start of the first prompt."""
