"""A reply's thinking section (``<think>...</think>`` and the markers other models use), split off.

Textual-free: the chat view folds the section, counts its tokens, and the ``hide_thinking``
setting leaves it out; the token view and the inspector keep every token either way, and the
stop reason is untouched (thinking is text of the reply like any other).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tui.library.card import THINK_TAGS


@dataclass(frozen=True)
class ThinkingSplit:
    """A reply's text cut into its thinking section and its answer."""

    thinking: str | None
    """The text between the markers (None: the reply has no thinking section)."""
    answer: str
    """The reply without the section (leading blank lines dropped)."""
    closed: bool
    """The closing marker was written (False while the model is still thinking)."""
    end: int
    """Where the section ends in the reply's text, markers included (0 without one)."""
    tags: tuple[str, str] | None = None


def split_thinking(
    text: str, tags: Sequence[tuple[str, str]] = THINK_TAGS, *, starts_inside: bool = False
) -> ThinkingSplit:
    """Split ``text`` (a whole reply, or what has streamed so far).

    A section counts when the reply opens with a marker (after blank space), or, with
    ``starts_inside`` (the template's generation prompt ends with the opening marker, as
    DeepSeek-R1's and Qwen3's do), when a closing marker comes before any opening one.
    """
    stripped = text.lstrip()
    offset = len(text) - len(stripped)
    for opening, closing in tags:
        if stripped.startswith(opening):
            body_start = offset + len(opening)
            close_at = text.find(closing, body_start)
            if close_at < 0:
                return ThinkingSplit(text[body_start:], "", False, len(text), (opening, closing))
            end = close_at + len(closing)
            return ThinkingSplit(
                text[body_start:close_at], text[end:].lstrip("\n"), True, end, (opening, closing)
            )
    if starts_inside:
        for opening, closing in tags:
            close_at = text.find(closing)
            if close_at >= 0 and opening not in text[:close_at]:
                end = close_at + len(closing)
                return ThinkingSplit(text[:close_at], text[end:].lstrip("\n"), True, end, (opening, closing))
    return ThinkingSplit(None, text, True, 0)


def tokens_in_section(pieces: Sequence[str], end: int) -> int:
    """How many of the reply's tokens (their texts, in order) start before ``end``."""
    count = 0
    position = 0
    for piece in pieces:
        if position >= end:
            break
        count += 1
        position += len(piece)
    return count


def prompt_opens_thinking(prompt_text: str, tags: Sequence[tuple[str, str]] = THINK_TAGS) -> bool:
    """Whether the rendered prompt leaves the model inside a thinking section already."""
    tail = prompt_text.rstrip()
    return any(tail.endswith(opening) for opening, _ in tags)
