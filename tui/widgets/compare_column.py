"""One column of the compare view: its parameters, its streaming token view, stop badge and speed."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from settings.sampling import SamplingParams
from tui.core.reply import ReplyRecord
from tui.core.text import one_line
from tui.engine.events import ReplyDone, TokenEvent
from tui.engine.param_sets import describe
from tui.engine.parting import Parting
from tui.widgets.stop_badge import small_badge
from tui.widgets.token_view import TokenView

PART_STYLE = Style(color="black", bgcolor="#ff80ab", bold=True)


class CompareColumn(Vertical, can_focus=False):
    """A column: parameters on top, the reply's tokens, then count, speed, stop badge and parting."""

    def __init__(self, column: int, params: SamplingParams, label: str | None = None) -> None:
        super().__init__(id=f"compare-column-{column}", classes="compare-column")
        self.column = column
        self.params = params
        self.label = label or describe(params)
        """What the column's parameters are, shown on top (what differs from the other columns)."""
        self.record = ReplyRecord(reply_id=column, params_by_version={0: params})
        self.tokens_per_s = 0.0
        self.parting: Parting | None = None

    def compose(self) -> ComposeResult:
        """Parameters, token view, status line, parting line."""
        yield Static(self._params_text(), classes="compare-params")
        yield TokenView(id=f"compare-tokens-{self.column}", classes="compare-tokens")
        yield Static(self._status_text(), classes="compare-status")
        yield Static("", classes="compare-part")

    def on_mount(self) -> None:
        """Show the (empty) reply."""
        self.view.show_reply(self.record)

    @property
    def view(self) -> TokenView:
        """The column's token view."""
        return self.query_one(TokenView)

    def set_params(self, params: SamplingParams, version: int) -> None:
        """The column's live parameters changed (shown on top; the token view marks the change)."""
        self.params = params
        self.label = describe(params)
        self.record.params_by_version[version] = params
        self.query_one(".compare-params", Static).update(self._params_text())

    def add_tokens(self, tokens: tuple[TokenEvent, ...]) -> None:
        """Tokens of this column arrived."""
        self.record.events.extend(tokens)
        elapsed = sum(t.elapsed_ms for t in self.record.events[1:])
        if elapsed > 0:
            self.tokens_per_s = (len(self.record.events) - 1) * 1000.0 / elapsed
        self.view.append_tokens(tokens)
        self._refresh_status()

    def finish(self, done: ReplyDone) -> None:
        """The column ended: stop badge, final speed."""
        self.record.done = done
        self.record.prompt_tokens = done.prompt_tokens
        self.record.params_by_version.update(done.params)
        if done.tokens_per_s:
            self.tokens_per_s = done.tokens_per_s
        self.view.finish(done)
        self._refresh_status()
        self.set_class(True, "-done")

    def mark_parting(self, parting: Parting | None) -> None:
        """Show where the columns parted, and put this column's cursor on that token."""
        self.parting = parting
        label = self.query_one(".compare-part", Static)
        if parting is None:
            label.update("")
            return
        text = Text("⑂ ", PART_STYLE)
        text.append(f" parted at token {parting.index} ", PART_STYLE)
        mine = next((c for c in parting.choices if c.column == self.column), None)
        if mine is not None:
            if mine.token_id is None:
                text.append(f" ended here: {one_line(mine.text, 40)}")
            else:
                p = f"{mine.p_raw:.2f}" if mine.p_raw is not None else "?"
                text.append(f" picked {one_line(mine.text, 16)!r} p={p}")
                for token_id, p_other in mine.others:
                    other = next((c for c in parting.choices if c.token_id == token_id), None)
                    shown = one_line(other.text, 16) if other else str(token_id)
                    p_text = f"{p_other:.2f}" if p_other is not None else "<top-N"
                    text.append(f"; {shown!r} was p={p_text}")
        label.update(text)
        if mine is not None and mine.token_id is not None and parting.index < len(self.record.events):
            self.view.cursor = parting.index

    def _params_text(self) -> Text:
        text = Text(f"#{self.column + 1} ", Style(bold=True, color="#ffb300"))
        text.append(self.label)
        return text

    def _status_text(self) -> Text:
        count = len(self.record.events)
        text = Text(f"{count} tokens")
        if self.tokens_per_s:
            text.append(f" · {self.tokens_per_s:.1f} tok/s")
        text.append("  ")
        if self.record.done is not None:
            text.append_text(small_badge(self.record.done.stop))
        else:
            text.append("streaming…" if count else "waiting", Style(dim=True))
        return text

    def _refresh_status(self) -> None:
        self.query_one(".compare-status", Static).update(self._status_text())
