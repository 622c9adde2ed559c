"""The confidence strip: a sparkline of how sure the model was of each token of a reply.

One cell per token (or, for a reply wider than the strip, one cell per bucket of tokens showing
the bucket's least sure token), height and colour by the probability the model gave the chosen
token at temperature 1. The selected token is marked; a click jumps to the token under the mouse.

It is docked over the token view and follows a streaming reply: :meth:`ConfidenceStrip.extend`
appends the new tokens' values and cells and keeps the least sure token as a running minimum, so
a token costs O(1) while the reply fits the strip's width (past it, cells are bucketed again).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.console import RenderableType
from rich.style import Style
from rich.text import Text
from textual import events
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from tui.core.text import one_line
from tui.engine.events import TokenEvent
from tui.engine.whatif import confidence_values, least_confident

BLOCKS = "▁▂▃▄▅▆▇█"
UNKNOWN_CELL = "·"


def shown_p(p: float) -> float:
    """``p`` clamped to [0, 1] and rounded to 1e-6, before it picks a colour, glyph or bar cell: a
    probability from float32 logits is only good to ~1e-7, so an exact 0.25 may come out as 0.2499999
    and must not step a display down on that noise."""
    return round(min(max(p, 0.0), 1.0), 6)


def confidence_color(p: float) -> str:
    """Red (unsure) through amber to green (sure); grey when unknown (NaN: a server did not say)."""
    if math.isnan(p):
        return "#707070"
    p = shown_p(p)
    if p < 0.5:
        t = p / 0.5
        rgb = (229, int(57 + 120 * t), 53)
    else:
        t = (p - 0.5) / 0.5
        rgb = (int(229 - 162 * t), int(177 + 10 * t), int(53 + 53 * t))
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def buckets(count: int, width: int) -> list[range]:
    """Split ``count`` tokens into at most ``width`` consecutive, near-equal ranges."""
    if count <= 0 or width <= 0:
        return []
    cells = min(count, width)
    return [range(i * count // cells, (i + 1) * count // cells) for i in range(cells)]


def strip_cell(values: Sequence[float], cell: range) -> tuple[str, Style]:
    """The character and colour of one strip cell: its least sure token's probability, or ``·``."""
    known = [values[i] for i in cell if not math.isnan(values[i])]
    if not known:
        return UNKNOWN_CELL, Style()
    p = shown_p(min(known))
    return BLOCKS[min(int(p * len(BLOCKS)), len(BLOCKS) - 1)], Style(color=confidence_color(p))


def sparkline(values: Sequence[float], width: int, cursor: int | None) -> tuple[Text, list[range]]:
    """The strip's first line for ``values`` (probabilities) in ``width`` cells, and each cell's tokens."""
    ranges = buckets(len(values), width)
    return _line([strip_cell(values, cell) for cell in ranges], ranges, cursor), ranges


def _line(cells: Sequence[tuple[str, Style]], ranges: Sequence[range], cursor: int | None) -> Text:
    line = Text(no_wrap=True, overflow="crop")
    for (char, style), cell in zip(cells, ranges, strict=True):
        if cursor is not None and cursor in cell:
            style += Style(reverse=True, bold=True)
        line.append(char, style)
    return line


class ConfidenceStrip(Widget):
    """A sparkline of the chosen tokens' probabilities for one reply; click to jump to a token."""

    DEFAULT_CSS = """
    ConfidenceStrip {
        height: 2;
    }
    """

    cursor: reactive[int | None] = reactive(None)
    """The selected token (marked)."""

    class JumpRequested(Message):
        """The user clicked the strip: select token ``index``."""

        def __init__(self, strip: ConfidenceStrip, index: int) -> None:
            super().__init__()
            self.strip = strip
            self.index = index

        @property
        def control(self) -> ConfidenceStrip:
            """The strip that was clicked."""
            return self.strip

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.events: Sequence[TokenEvent] = ()
        self.values: list[float] = []
        """Per token shown: the probability of the chosen token at T=1 (NaN: not recorded)."""
        self.least: int | None = None
        """The least sure token so far (the first on ties), kept as tokens are appended."""
        self._ranges: list[range] = []
        self._cells: list[tuple[str, Style]] = []
        self._cells_width = 0

    def show(self, events: Sequence[TokenEvent], cursor: int | None) -> None:
        """Show the tokens of a reply with ``cursor`` marked (computes every value once)."""
        self.events = events
        self.values = confidence_values(events)
        self.least = least_confident(events)
        self._cells_width = 0  # cells are rebuilt at the next render
        self.cursor = cursor
        self.refresh()

    def extend(self, events: Sequence[TokenEvent]) -> None:
        """``events`` is the shown reply grown at its end: add only the new tokens."""
        if events is not self.events or len(events) < len(self.values):
            self.show(events, self.cursor)
            return
        start = len(self.values)
        new = confidence_values(events[start:])
        self.values.extend(new)
        best = self.values[self.least] if self.least is not None else math.inf
        for offset, p in enumerate(new):
            if not math.isnan(p) and p < best:
                self.least, best = start + offset, p
        if new:
            self.refresh()

    def _line_cells(self, width: int) -> None:
        """Bring the cached cells up to the values: append while one cell is one token, else rebuild."""
        count = len(self.values)
        appendable = width == self._cells_width and count <= width and len(self._cells) <= count
        if appendable:
            for index in range(len(self._cells), count):
                self._cells.append(strip_cell(self.values, range(index, index + 1)))
            self._ranges = [range(i, i + 1) for i in range(count)]
            return
        self._ranges = buckets(count, width)
        self._cells = [strip_cell(self.values, cell) for cell in self._ranges]
        self._cells_width = width

    def render(self) -> RenderableType:
        """The sparkline, then the least sure token."""
        width = max(self.content_region.width, 1)
        self._line_cells(width)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append_text(_line(self._cells, self._ranges, self.cursor))
        text.append("\n")
        weakest = self.least
        if weakest is None:
            if self.values:
                text.append("no token probabilities recorded", "italic")
            else:
                text.append("how sure the model was of each token shows here as the reply streams", "dim")
            return text
        event = self.events[weakest]
        text.append("least sure: ", "dim")
        text.append(f"#{weakest} ")
        text.append(repr(one_line(event.text, 16)), Style(color=confidence_color(event.p_raw)))
        text.append(f" p={event.p_raw:.3f}", "bold")
        text.append("  (u jumps there)", "dim")
        return text

    async def _on_click(self, event: events.Click) -> None:
        if event.y != 0 or not self._ranges:
            return
        x = event.x - self.gutter.left
        if 0 <= x < len(self._ranges):
            cell = self._ranges[x]
            values = self.values
            index = min(cell, key=lambda i: values[i] if not math.isnan(values[i]) else math.inf)
            self.post_message(self.JumpRequested(self, index))
