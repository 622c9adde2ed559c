"""A compare run as the conversation records it: the prompt and each column's finished reply (no Textual)."""

from __future__ import annotations

from dataclasses import dataclass

from tui.engine.events import ReplyDone


@dataclass(frozen=True, slots=True)
class ComparedColumn:
    """One column of a compare: its label (what set it was) and its finished reply."""

    label: str
    done: ReplyDone
    """Its text, parameter versions, stop reason, token count, seed and timings."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """A finished compare run on this chat (see :meth:`Conversation.record_comparison`)."""

    prompt: str
    columns: tuple[ComparedColumn, ...]
    kept: int | None = None
    """The column kept as the chat's reply (an index into ``columns``), None if none was."""
    parting: str | None = None
    """Where the columns parted, as the compare view says it."""
    mode: str = "chat"
    """``chat`` (the chat template) or ``completion`` (the text continued as it is)."""
