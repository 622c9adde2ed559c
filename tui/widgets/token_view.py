"""The token-stream view: every token of a reply as its own shaded cell, with a cursor and a stop badge.

Token boundaries show as alternating shading (or a colour by the probability the model gave the
token); spaces, tabs and newlines show as faint ␣ → ↵; a marker shows where the live parameters
changed mid-reply; the end carries the large stop badge. Token text is model output: it is only
ever put on screen as plain text in styled segments (never parsed as markup).

It is a line-API view: tokens are laid out into lines once, and only the last paragraph (since
the last newline token) is laid out again when tokens arrive, so a long reply does not get
slower to stream; only visible lines are drawn.

The cursor (left/right, home/end, or a click) selects a token; :class:`TokenView.TokenSelected`
carries its TokenEvent, so an inspector can show the candidates behind it.

A :class:`~tui.widgets.confidence_strip.ConfidenceStrip` beside the view (in the same pane) is
kept in step with it: the reply's tokens (appended as they stream) and the cursor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len, chop_cells
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from tui.core.reply import ReplyRecord, describe_change
from tui.core.text import token_display
from tui.engine.events import ReplyDone, TokenEvent
from tui.widgets.confidence_strip import ConfidenceStrip, shown_p
from tui.widgets.stop_badge import large_badge

SHADES = ("#2d333b", "#444c56")
"""Alternating backgrounds that make token boundaries visible (distinct in 256-colour terminals too)."""
CURSOR_STYLE = Style(color="black", bgcolor="#e0f7fa", bold=True, underline=True)
MARKER_STYLE = Style(color="black", bgcolor="#ffb300", bold=True)
WHITESPACE_COLOR = "#8a94a6"
TEXT_COLOR = "#f5f5f5"


def probability_color(p: float, odd: bool) -> str:
    """A background colour from red (unlikely) through amber to green (likely); odd tokens a bit darker."""
    if math.isnan(p):  # a server that does not report it: unknown, shown grey
        return "#3a3a3a" if odd else "#484848"
    p = shown_p(p)
    if p < 0.5:
        t = p / 0.5
        rgb = (150, int(40 + 90 * t), 40)
    else:
        t = (p - 0.5) / 0.5
        rgb = (int(150 - 110 * t), 130, int(40 + 10 * t))
    if odd:
        rgb = (int(rgb[0] * 0.8), int(rgb[1] * 0.8), int(rgb[2] * 0.8))
    return "#{:02x}{:02x}{:02x}".format(*rgb)


@dataclass(frozen=True, slots=True)
class Piece:
    """A run of text on one screen line, belonging to one token."""

    text: str
    style: Style
    token: int
    marker: bool = False
    """A parameter-change marker (not part of the token: the cursor does not highlight it)."""


@dataclass(frozen=True, slots=True)
class _Fragment:
    text: str
    style: Style
    marker: bool
    breaks_line: bool


class TokenView(ScrollView, can_focus=True):
    """Shows one reply token by token; a cursor selects a token."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1)", "Prev token", id="token_view.prev", tooltip="Select the previous token"),
        Binding("right", "move(1)", "Next token", id="token_view.next", tooltip="Select the next token"),
        Binding("home", "jump(0)", "First", show=False, id="token_view.first", tooltip="First token"),
        Binding("end", "jump(-1)", "Last", show=False, id="token_view.last", tooltip="Last token"),
        Binding("shift+left", "reply(-1)", "Prev reply", show=False, id="token_view.prev_reply",
                tooltip="Show the tokens of the previous reply of the chat"),
        Binding("shift+right", "reply(1)", "Next reply", show=False, id="token_view.next_reply",
                tooltip="Show the tokens of the next reply of the chat"),
    ]  # fmt: skip

    DEFAULT_CSS = """
    TokenView {
        height: 1fr;
        padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    """

    cursor: reactive[int | None] = reactive(None)
    """Index of the selected token, or None."""
    color_by_probability: reactive[bool] = reactive(False)
    """Colour each token by the probability the model gave it instead of alternating shades."""

    class TokenMessage(Message):
        """About token ``index`` of reply ``reply_id`` (its TokenEvent: ``event``)."""

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

    class TokenSelected(TokenMessage):
        """The cursor moved to a token."""

    class TokenClicked(TokenMessage):
        """The user clicked a token (the cursor is on it now)."""

    class ReplyStepRequested(Message):
        """Show the tokens of the reply ``delta`` places before (-) or after (+) the one shown."""

        def __init__(self, delta: int) -> None:
            super().__init__()
            self.delta = delta

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.record: ReplyRecord | None = None
        self._cells: list[list[_Fragment]] = []
        """Per token: its fragments (marker, text, whitespace marks)."""
        self._lines: list[list[Piece]] = []
        """The laid-out token lines."""
        self._token_line: list[int] = []
        """Per token: the line its text starts on."""
        self._stale = False
        """Tokens arrived (or the reply ended) while the view was hidden: lay out when shown."""
        self._para_token = 0
        """First token of the last (open) paragraph: the only one laid out again as tokens arrive."""
        self._para_line = 0
        self._layout_width = 0
        self.strip: ConfidenceStrip | None = None
        """The confidence strip over this view (a sibling in its pane), found when mounted."""

    def on_mount(self) -> None:
        """Find the confidence strip of the pane, if it has one."""
        parent = self.parent
        if isinstance(parent, Widget):
            strips = [child for child in parent.children if isinstance(child, ConfidenceStrip)]
            self.strip = strips[0] if strips else None

    # -- state ---------------------------------------------------------------------------
    def show_reply(self, record: ReplyRecord | None) -> None:
        """Show ``record`` (its tokens so far); None clears the view."""
        self.record = record
        self.cursor = None
        self._stale = False
        if self.strip is not None:
            self.strip.show(record.events if record else (), None)
        self._rebuild()
        self.scroll_to(0, 0, animate=False, immediate=True)

    def append_tokens(self, tokens: tuple[TokenEvent, ...]) -> None:
        """The shown reply received tokens (already added to its record): lay out the last paragraph.

        While the view is hidden (the chat is shown), nothing is laid out until :meth:`reveal`: a
        hidden view that changes its virtual size still costs the whole screen a layout pass.
        """
        if not self._shown():
            self._stale = True
            return
        follow = self.scroll_y >= self.max_scroll_y
        self._extend_cells()
        if self.strip is not None and self.record is not None:
            self.strip.extend(self.record.events)
        self._layout(from_paragraph=True)
        if follow:
            self.scroll_end(animate=False, immediate=True)

    def finish(self, done: ReplyDone) -> None:
        """The shown reply ended: draw its badge (the final events may carry parameter versions)."""
        if not self._shown():
            self._stale = True
            return
        self._catch_up()

    def reveal(self) -> None:
        """The view was just shown: catch up on tokens that came while hidden, or a new width."""
        if self._stale:
            self._stale = False
            self._catch_up()
        elif self._content_width() != self._layout_width:
            self._layout(from_paragraph=False)

    def _catch_up(self) -> None:
        """Lay out the whole reply again (its strip too), staying at the end if the view was there."""
        follow = self.scroll_y >= self.max_scroll_y
        if self.strip is not None and self.record is not None:
            self.strip.extend(self.record.events)
        self._rebuild()
        if follow:
            self.scroll_end(animate=False, immediate=True)

    def _shown(self) -> bool:
        """Whether this view and every container above it are displayed."""
        node: DOMNode | None = self
        while isinstance(node, Widget):
            if not node.display:
                return False
            node = node.parent
        return True

    @property
    def selected_event(self) -> TokenEvent | None:
        """The TokenEvent under the cursor."""
        if self.record is None or self.cursor is None or self.cursor >= len(self.record.events):
            return None
        return self.record.events[self.cursor]

    # -- cells and layout ------------------------------------------------------------------
    def _rebuild(self) -> None:
        self._cells = []
        self._extend_cells()
        self._layout(from_paragraph=False)

    def _extend_cells(self) -> None:
        events_ = self.record.events if self.record else []
        for index in range(len(self._cells), len(events_)):
            self._cells.append(self._cell(index))

    def _cell(self, index: int) -> list[_Fragment]:
        assert self.record is not None
        event = self.record.events[index]
        fragments: list[_Fragment] = []
        change = self.record.params_change(index)
        if change is not None:
            fragments.append(_Fragment(f"⚙ {describe_change(*change)} ", MARKER_STYLE, True, False))
        odd = index % 2 == 1
        bg = probability_color(event.p_final, odd) if self.color_by_probability else SHADES[odd]
        meta = {"token": index}
        for text, is_mark in token_display(event.text):
            style = Style(bgcolor=bg, color=WHITESPACE_COLOR if is_mark else TEXT_COLOR, meta=meta)
            breaks = text.endswith("\n")
            fragments.append(_Fragment(text.rstrip("\n") if breaks else text, style, False, breaks))
        return fragments

    def _content_width(self) -> int:
        return max(self.scrollable_content_region.width, 8)

    def _layout(self, *, from_paragraph: bool) -> None:
        """Lay out tokens into lines: all of them, or only the open last paragraph."""
        width = self._content_width()
        if not from_paragraph or width != self._layout_width:
            self._lines, self._token_line = [], []
            self._para_token = self._para_line = 0
        self._layout_width = width
        del self._lines[self._para_line :]
        del self._token_line[self._para_token :]
        line: list[Piece] = []
        used = 0
        for index in range(self._para_token, len(self._cells)):
            fragments = self._cells[index]
            token_width = sum(cell_len(f.text) for f in fragments if not f.marker)
            marker_width = sum(cell_len(f.text) for f in fragments if f.marker)
            if line and used + marker_width + token_width > width and token_width + marker_width <= width:
                self._lines.append(line)
                line, used = [], 0
            self._token_line.append(len(self._lines))
            for fragment in fragments:
                text = fragment.text
                while text:
                    room = width - used
                    if room <= 0:
                        self._lines.append(line)
                        line, used = [], 0
                        room = width
                    # Measure and chop only a prefix: doing it on the whole rest each time is
                    # quadratic (a 40,000-character token took seconds to lay out).
                    fits = len(text) <= room and cell_len(text) <= room
                    head = text if fits else chop_cells(text[:room], room)[0]
                    if not head:  # a wide character that does not fit: next line
                        self._lines.append(line)
                        line, used = [], 0
                        continue
                    line.append(Piece(head, fragment.style, index, fragment.marker))
                    used += cell_len(head)
                    text = text[len(head) :]
                if fragment.breaks_line:
                    self._lines.append(line)
                    line, used = [], 0
                    self._para_token, self._para_line = index + 1, len(self._lines)
        if line:
            self._lines.append(line)
        self.virtual_size = Size(width, len(self._lines) + len(self._tail()))
        self._show_subtitle()
        self.refresh()

    def _show_subtitle(self) -> None:
        """The frame's subtitle: token count, or the selected token's probability, and the keys."""
        container = self.parent
        if not isinstance(container, Widget):
            return
        event = self.selected_event
        if event is None or self.cursor is None:
            where = f"{len(self._cells)} tokens · ←/→ select"
        else:
            where = (
                f"token {self.cursor + 1}/{len(self._cells)} · p {event.p_final:.2f} "
                f"(at T=1 {event.p_raw:.2f}) · i inspect"
            )
        container.border_subtitle = f"{where} · ctrl+o colour by probability"

    def _tail(self) -> list[Text]:
        """What follows the tokens: the stop badge, a streaming mark, or a hint."""
        if self.record is None:
            return [Text("No reply yet: send a prompt, then come back to see its tokens.", "italic")]
        if self.record.done is not None:
            return [Text(), large_badge(self.record.done.stop)]
        if not self._cells:
            return [Text("waiting for the first token…", "italic")]
        return [Text(" ▍", "blink")]

    # -- drawing -------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        """One screen line: token pieces (the cursor's token highlighted) or a tail line."""
        if self._content_width() != self._layout_width:  # first drawn at this width
            self._layout(from_paragraph=False)
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if index < len(self._lines):
            segments = [
                Segment(
                    piece.text,
                    piece.style + CURSOR_STYLE
                    if piece.token == self.cursor and not piece.marker
                    else piece.style,
                )
                for piece in self._lines[index]
            ]
            strip = Strip(segments)
        else:
            tail = self._tail()
            at = index - len(self._lines)
            if at >= len(tail):
                return Strip.blank(width, base)
            strip = Strip(list(tail[at].render(self.app.console)))
        return strip.apply_style(base).crop_extend(scroll_x, scroll_x + width, base)

    def render(self) -> Text:
        """The whole view as one Text, as it reads on screen (for tests and export; drawing is per line)."""
        text = Text()
        for number, line in enumerate(self._lines):
            if number:
                text.append("\n")
            for piece in line:
                text.append(piece.text, piece.style)
        for tail_line in self._tail():
            text.append("\n")
            text.append_text(tail_line)
        return text

    # -- reactive updates ------------------------------------------------------------------
    def watch_color_by_probability(self) -> None:
        self._rebuild()

    def watch_cursor(self, old: int | None, new: int | None) -> None:
        self.refresh()
        self._show_subtitle()
        if self.strip is not None:
            self.strip.cursor = new
        if new is None or self.record is None or new >= len(self.record.events):
            return
        self.post_message(self.TokenSelected(self, self.record.reply_id, new, self.record.events[new]))
        if new < len(self._token_line):
            line = self._token_line[new]
            self.scroll_to_region(
                Region(0, line, 1, 1), animate=False, immediate=True, x_axis=False, spacing=None
            )

    def on_resize(self, event: events.Resize) -> None:
        """Lay out again for the new width."""
        if self._content_width() != self._layout_width:
            self._layout(from_paragraph=False)

    # -- actions and mouse ---------------------------------------------------------------
    def action_move(self, delta: int) -> None:
        """Move the cursor by ``delta`` tokens."""
        count = len(self.record.events) if self.record else 0
        if count == 0:
            return
        start = self.cursor if self.cursor is not None else (count if delta < 0 else -1)
        self.cursor = min(max(start + delta, 0), count - 1)

    def action_reply(self, delta: int) -> None:
        """Ask for the previous / next reply of the chat (the app knows the transcript)."""
        self.post_message(self.ReplyStepRequested(delta))

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
            record = self.record
            if record is not None and 0 <= index < len(record.events):
                self.post_message(self.TokenClicked(self, record.reply_id, index, record.events[index]))
