"""The token-stream view: every token of a reply as its own shaded cell, with a cursor and a stop badge.

Token boundaries show as alternating shading (or a colour by the probability the model gave the
token); spaces, tabs and newlines show as faint ␣ → ↵; a marker shows where the live parameters
changed mid-reply; the end carries the large stop badge. Token text is model output: it is only
ever added to a ``rich.text.Text`` as plain text (never parsed as markup).

The cursor (left/right, home/end, or a click) selects a token; :class:`TokenView.TokenSelected`
carries its TokenEvent, so an inspector can show the candidates behind it.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import RenderableType
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from tui.engine.events import ReplyDone, TokenEvent
from tui.reply import ReplyRecord, describe_change
from tui.widgets.safe_text import token_display
from tui.widgets.stop_badge import large_badge

SHADES = ("#303846", "#475266")
"""Alternating backgrounds that make token boundaries visible."""
CURSOR_STYLE = Style(color="black", bgcolor="#e0f7fa", bold=True, underline=True)
MARKER_STYLE = Style(color="black", bgcolor="#ffb300", bold=True)
WHITESPACE_COLOR = "#8a94a6"


def probability_color(p: float, odd: bool) -> str:
    """A background colour from red (unlikely) through amber to green (likely); odd tokens a bit darker."""
    p = min(max(p, 0.0), 1.0)
    if p < 0.5:
        t = p / 0.5
        rgb = (150, int(40 + 90 * t), 40)
    else:
        t = (p - 0.5) / 0.5
        rgb = (int(150 - 110 * t), 130, int(40 + 10 * t))
    if odd:
        rgb = (int(rgb[0] * 0.8), int(rgb[1] * 0.8), int(rgb[2] * 0.8))
    return "#{:02x}{:02x}{:02x}".format(*rgb)


class TokenView(Widget, can_focus=True):
    """Shows one reply token by token; a cursor selects a token."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1)", "Prev token", id="token_view.prev", tooltip="Select the previous token"),
        Binding("right", "move(1)", "Next token", id="token_view.next", tooltip="Select the next token"),
        Binding("home", "jump(0)", "First", show=False, id="token_view.first", tooltip="First token"),
        Binding("end", "jump(-1)", "Last", show=False, id="token_view.last", tooltip="Last token"),
    ]

    DEFAULT_CSS = """
    TokenView {
        height: auto;
        padding: 0 1;
    }
    """

    cursor: reactive[int | None] = reactive(None)
    """Index of the selected token, or None."""
    color_by_probability: reactive[bool] = reactive(False)
    """Colour each token by the probability the model gave it instead of alternating shades."""

    class TokenSelected(Message):
        """The cursor moved to a token."""

        def __init__(self, view: TokenView, reply_id: int, index: int, event: TokenEvent) -> None:
            super().__init__()
            self.view = view
            self.reply_id = reply_id
            self.index = index
            self.event = event

        @property
        def control(self) -> TokenView:
            """The token view that sent this message."""
            return self.view

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.record: ReplyRecord | None = None
        self._cells: list[Text] = []
        self._offsets: list[int] = []
        """Start offset of each token's cell in the rendered text."""
        self._joined = Text(no_wrap=False, overflow="fold")
        """All cells, joined (appended to as tokens arrive)."""
        self._marker_lengths: list[int] = []
        """Length of the parameter-change marker in front of each token's cell (0 if none)."""
        self._stale = False

    # -- state ---------------------------------------------------------------------------
    def show_reply(self, record: ReplyRecord | None) -> None:
        """Show ``record`` (its tokens so far); None clears the view."""
        self.record = record
        self.cursor = None
        self._rebuild()

    def append_tokens(self, tokens: tuple[TokenEvent, ...]) -> None:
        """The shown reply received ``tokens`` (already added to its record): add their cells only."""
        self._extend()
        self._changed()

    def finish(self, done: ReplyDone) -> None:
        """The shown reply ended: draw its badge (the final events may carry parameter versions)."""
        self._rebuild()

    @property
    def selected_event(self) -> TokenEvent | None:
        """The TokenEvent under the cursor."""
        if self.record is None or self.cursor is None or self.cursor >= len(self.record.events):
            return None
        return self.record.events[self.cursor]

    def _rebuild(self) -> None:
        self._cells = []
        self._offsets = []
        self._marker_lengths = []
        self._joined = Text(no_wrap=False, overflow="fold")
        self._extend()
        self._changed()

    def _extend(self) -> None:
        """Build the cells of tokens that have none yet (cost per new token, not per reply)."""
        events = self.record.events if self.record else []
        for index in range(len(self._cells), len(events)):
            cell, marker_length = self._cell(index)
            self._cells.append(cell)
            self._marker_lengths.append(marker_length)
            self._offsets.append(len(self._joined))
            self._joined.append_text(cell)

    def _changed(self) -> None:
        container = self.parent
        if isinstance(container, Widget):
            count = len(self._cells)
            container.border_subtitle = f"{count} tokens · ←/→ select · ctrl+o colour by probability"
            if not container.display:  # hidden behind the chat: refreshed by reveal()
                self._stale = True
                return
        self._stale = False
        self.refresh(layout=True)

    def reveal(self) -> None:
        """The view was just shown: redraw what changed while it was hidden."""
        if self._stale:
            self._stale = False
            self.refresh(layout=True)

    def _cell(self, index: int) -> tuple[Text, int]:
        assert self.record is not None
        event = self.record.events[index]
        cell = Text()
        change = self.record.params_change(index)
        if change is not None:
            cell.append(f"⚙ {describe_change(*change)} ", MARKER_STYLE)
        marker_length = len(cell)
        odd = index % 2 == 1
        bg = probability_color(event.p_final, odd) if self.color_by_probability else SHADES[odd]
        meta = {"token": index}
        for fragment, is_marker in token_display(event.text):
            style = Style(bgcolor=bg, color=WHITESPACE_COLOR if is_marker else "#f5f5f5", meta=meta)
            if is_marker and fragment.endswith("\n"):
                cell.append(fragment[:-1], style)
                cell.append("\n")
            else:
                cell.append(fragment, style)
        return cell, marker_length

    # -- rendering -----------------------------------------------------------------------
    def render(self) -> RenderableType:
        """All token cells, the cursor highlighted, then the stop badge."""
        if self.record is None:
            return Text("No reply yet: send a prompt, then come back to see its tokens.", "italic")
        text = self._joined.copy()
        if self.cursor is not None and self.cursor < len(self._cells):
            start = self._offsets[self.cursor]
            end = start + len(self._cells[self.cursor])
            text.stylize(CURSOR_STYLE, start + self._marker_lengths[self.cursor], end)
        done = self.record.done
        if done is not None:
            text.append("\n\n")
            text.append_text(large_badge(done.stop))
        elif self._cells:
            text.append(" ▍", "blink")
        else:
            text.append("waiting for the first token…", "italic")
        return text

    def watch_color_by_probability(self) -> None:
        self._rebuild()

    def watch_cursor(self, old: int | None, new: int | None) -> None:
        self.refresh(layout=True)
        if new is None or self.record is None or new >= len(self.record.events):
            return
        self.post_message(self.TokenSelected(self, self.record.reply_id, new, self.record.events[new]))
        self.call_after_refresh(self._scroll_to_cursor)

    def _scroll_to_cursor(self) -> None:
        if self.cursor is None or not self._offsets or self.cursor >= len(self._offsets):
            return
        rendered = self.render()
        assert isinstance(rendered, Text)
        width = max(self.content_region.width, 1)
        before = rendered[: self._offsets[self.cursor]]
        line = len(before.wrap(self.app.console, width)) - 1 if len(before) else 0
        container = self.parent
        if isinstance(container, Widget):
            top = self.virtual_region.y + max(line, 0)
            container.scroll_to_region(Region(0, top, width, 1), animate=False, immediate=True)

    # -- actions and mouse ---------------------------------------------------------------
    def action_move(self, delta: int) -> None:
        """Move the cursor by ``delta`` tokens."""
        count = len(self.record.events) if self.record else 0
        if count == 0:
            return
        start = self.cursor if self.cursor is not None else (count if delta < 0 else -1)
        self.cursor = min(max(start + delta, 0), count - 1)

    def action_jump(self, index: int) -> None:
        """Put the cursor on token ``index`` (negative counts from the end)."""
        count = len(self.record.events) if self.record else 0
        if count:
            self.cursor = index % count

    async def _on_click(self, event: events.Click) -> None:
        index = event.style.meta.get("token")
        if isinstance(index, int):
            self.cursor = index
            self.focus()
