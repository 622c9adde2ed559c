"""A reply's thinking section, folded: "▸ thinking · 312 tokens", opened and closed on a key.

The split itself is Textual-free (:mod:`tui.library.thinking`); this widget only shows it. The
token view and the inspector keep every token of the reply; ``hide_thinking`` leaves the widget
out (``display = False``) without touching the reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from tui.core.text import clean
from tui.library.thinking import ThinkingSplit, tokens_in_section


class ThinkingSection(Static, can_focus=True):
    """The folded thinking part of a reply, with its token count; Enter or t opens it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter,t",
            "toggle_thinking",
            "Thinking",
            id="thinking.toggle",
            tooltip="Open or fold the thinking",
        ),
    ]

    opened: reactive[bool] = reactive(False)

    class Toggled(Message):
        """The user opened or folded the section."""

        def __init__(self, section: ThinkingSection, opened: bool) -> None:
            super().__init__()
            self.section = section
            self.opened = opened

    def __init__(self, *, hidden: bool = False, id: str | None = None) -> None:
        super().__init__("", classes="thinking", markup=False, id=id)
        self.split = ThinkingSplit(None, "", True, 0)
        self.tokens: int | None = 0
        """Tokens in the section (None: the reply's token events are not kept)."""
        self.finished = False
        self.display = False
        self.hidden = hidden
        """The hide_thinking setting: never shown."""

    def show_split(self, split: ThinkingSplit, pieces: Sequence[str], *, finished: bool = False) -> None:
        """Show ``split`` (``pieces``: the reply's token texts, for the count; ``finished``: the
        reply has ended)."""
        tokens = None if split.thinking is not None and not pieces else tokens_in_section(pieces, split.end)
        display = split.thinking is not None and not self.hidden
        before = (self.split.thinking, self.split.closed, self.finished, self.tokens, self.display)
        self.split = split
        if before == (split.thinking, split.closed, finished, tokens, display):
            return  # only the answer grew: no redraw (each costs a layout of the transcript)
        self.finished = finished
        self.tokens = tokens
        self.display = display
        self.refresh_text()

    def refresh_text(self) -> None:
        """Redraw the title line (and the text when open)."""
        text = Text()
        marker = "▾" if self.opened else "▸"
        state = "" if self.split.closed else " (not closed)" if self.finished else " (still thinking…)"
        count = "" if self.tokens is None else f" · {self.tokens:,} tokens"
        text.append(f"{marker} thinking{count}{state}", style="italic")
        if self.opened and self.split.thinking:
            text.append("\n")
            text.append(clean(self.split.thinking.strip("\n")), style="dim")
        self.update(text)

    def watch_opened(self, _opened: bool) -> None:
        """Redraw when opened or folded."""
        self.refresh_text()

    def action_toggle_thinking(self) -> None:
        """Open or fold the section."""
        self.opened = not self.opened
        self.post_message(self.Toggled(self, self.opened))
