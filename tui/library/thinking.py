"""A reply's thinking section (``<think>...</think>`` and the markers other models use), split off.

Textual-free: the chat view folds the section, counts its tokens, and the ``hide_thinking``
setting leaves it out; the token view and the inspector keep every token either way, and the
stop reason is untouched (thinking is text of the reply like any other).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tui.engine.chat_format import ChatFormatter, ChatTemplateError
from tui.engine.events import ChatMessage
from tui.library.card import THINK_TAGS, declared_think_tags
from tui.library.gguf_header import GGUFHeaderError, read_header


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
    DeepSeek-R1's does), from the start: up to the first closing marker, or all of it while none
    has come (the prompt opened the section, so the model is still thinking).
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
        return ThinkingSplit(text, "", False, len(text), tags[0] if tags else None)
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


def marker_may_follow(text: str, tags: Sequence[tuple[str, str]] = THINK_TAGS) -> bool:
    """While streaming: the reply so far is blank or a proper beginning of an opening marker, so
    whether it has a thinking section is not known yet (nothing of it is shown)."""
    stripped = text.lstrip()
    return not stripped or any(
        len(stripped) < len(opening) and opening.startswith(stripped) for opening, _ in tags
    )


@dataclass(frozen=True)
class ThinkingStyle:
    """How the chat view finds a reply's thinking: the loaded model's markers, and the setting."""

    tags: tuple[tuple[str, str], ...] = THINK_TAGS
    """The markers to look for, the model's declared ones first."""
    starts_inside: bool = False
    """The model's generation prompt ends with the opening marker (a reply starts inside the section)."""
    hidden: bool = False
    """The ``hide_thinking`` setting: the section is never shown (the tokens stay in the token view)."""

    def split(self, text: str, *, final: bool = True) -> ThinkingSplit | None:
        """Split ``text``; while streaming (``final`` False), None until it is known whether the
        reply opens with a marker."""
        if not final and not self.starts_inside and marker_may_follow(text, self.tags):
            return None
        return split_thinking(text, self.tags, starts_inside=self.starts_inside)


PROBE = "Hello"
"""The user message rendered to see what the model's generation prompt ends with."""


def thinking_style(template: str | None, *, hidden: bool) -> ThinkingStyle:
    """The style for a model whose chat template is ``template`` (Jinja text, or None).

    The template's markers come first; if its prompt (one user message, rendered by the engine's
    own formatter) ends with the opening marker, replies start inside the section. A template that
    fails to render is not probed (its error shows when a reply is sent).
    """
    declared = declared_think_tags(template)
    if declared is None:
        return ThinkingStyle(hidden=hidden)
    tags = (declared, *(tag for tag in THINK_TAGS if tag != declared))
    try:
        formatter = ChatFormatter(template, bos_token="", eos_token="")
        prompt = formatter.render([ChatMessage("user", PROBE)])
    except ChatTemplateError:
        return ThinkingStyle(tags, hidden=hidden)
    return ThinkingStyle(tags, prompt_opens_thinking(prompt, (declared,)), hidden)


def model_thinking_style(path: Path, chat_template: str | None, *, hidden: bool) -> ThinkingStyle:
    """The style for the GGUF at ``path`` with the ``chat_template`` setting (a built-in template's
    name or Jinja text; None: the GGUF's own). An unreadable header gives the default markers."""
    override = (chat_template or "").strip()
    if override and "{" not in override and "\n" not in override:
        return ThinkingStyle(hidden=hidden)  # a llama.cpp built-in: no thinking markers of its own
    template = chat_template or None
    if template is None:
        try:
            template = read_header(path).get_str("tokenizer.chat_template") or None
        except (OSError, GGUFHeaderError):
            template = None
    return thinking_style(template, hidden=hidden)
