"""The status bar: model, where it runs, context used (a gauge), speed and stop reason of the last reply."""

from __future__ import annotations

from rich.console import RenderableType
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.core.state import ModelState
from tui.core.text import one_line
from tui.engine.events import ModelInfo, ReplyDone
from tui.store.session import SaveState
from tui.widgets.stop_badge import small_badge

__all__ = ["GAUGE_WIDTH", "ModelState", "StatusBar", "context_gauge"]

GAUGE_WIDTH = 12


def context_gauge(used: int, total: int, width: int = GAUGE_WIDTH) -> Text:
    """``ctx ▰▰▰▱▱▱ 412/2048``: green, amber past 75 %, red past 90 %."""
    fraction = min(used / total, 1.0) if total > 0 else 0.0
    filled = max(round(fraction * width), 1 if used > 0 else 0)  # any use shows
    color = "#66bb6a" if fraction < 0.75 else "#ffb300" if fraction < 0.9 else "#ef5350"
    text = Text("ctx ")
    text.append("▰" * filled, Style(color=color))
    text.append("▱" * (width - filled), Style(color="#5c6370"))
    text.append(f" {used}/{total}")
    return text


class StatusBar(Widget):
    """One line: state · model quant · GPU/CPU · context gauge · stop reason · speed · time to first token."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
    }
    """

    state: reactive[ModelState] = reactive(ModelState.LOADING)
    model_label: reactive[str] = reactive("")
    context_used: reactive[int] = reactive(0)
    """Tokens of the chat in the context: the prompt and the reply (as it streams, and exact when it
    ends), at most n_ctx (see :meth:`set_context`)."""
    live_tokens: reactive[int] = reactive(0)
    """Tokens of the reply being generated."""
    save_label: reactive[str] = reactive("")
    """"not saved" / "read-only" while the chat is not being saved ("" when it is)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.info: ModelInfo | None = None
        self.last_done: ReplyDone | None = None
        self._loading_name = ""

    def set_model(self, info: ModelInfo) -> None:
        """The model is loaded."""
        self.info = info
        size = f" {info.size_label}" if info.server and info.size_label else ""  # /props and /v1/models
        self.model_label = f"{one_line(info.name, 40)}{size} {one_line(info.quantization, 12)}"
        self.state = ModelState.READY

    def show_loading(self, model_name: str) -> None:
        """The model ``model_name`` (a file name) is loading."""
        self._loading_name = one_line(model_name, 60)
        self.model_label = self._loading_name
        self.state = ModelState.LOADING

    def set_failed(self, server_hint: str = "") -> None:
        """The model failed to load (``server_hint``: the server could not be reached; what to do)."""
        what = "not connected" if server_hint else "not loaded"
        hint = server_hint or "F2 picks another model"
        self.model_label = f"{self._loading_name} {what} (see the message; {hint})"
        self.state = ModelState.FAILED

    def set_context(self, used: int) -> None:
        """``used`` tokens of prompt and reply: the gauge shows them, at most the context's size.

        A reply that ends on a full context has one token more than the context holds: its last
        token was drawn but never evaluated into the context (it had no room left).
        """
        self.context_used = min(used, self.info.n_ctx) if self.info is not None else used

    def set_save_state(self, state: SaveState) -> None:
        """Whether the chat is being saved: a red segment (with the reason as tooltip) until it is."""
        self.save_label = "" if state.saved else state.label
        self.tooltip = None if state.saved else state.reason

    def set_done(self, done: ReplyDone) -> None:
        """The last reply ended."""
        self.last_done = done
        self.set_context(done.prompt_tokens + done.generated)
        self.live_tokens = 0
        if self.state is ModelState.GENERATING:
            self.state = ModelState.READY
        self.refresh()

    def render(self) -> RenderableType:
        """The status line."""
        sep = Text(" │ ", Style(color="#5c6370"))
        text = Text(no_wrap=True, overflow="ellipsis")
        state_style = {
            ModelState.LOADING: Style(color="black", bgcolor="#ffb300", bold=True),
            ModelState.READY: Style(color="black", bgcolor="#66bb6a", bold=True),
            ModelState.GENERATING: Style(color="black", bgcolor="#4fc3f7", bold=True),
            ModelState.FAILED: Style(color="white", bgcolor="#c62828", bold=True),
        }[self.state]
        label = {
            ModelState.LOADING: "loading…",
            ModelState.READY: "ready",
            ModelState.GENERATING: f"generating {self.live_tokens}",
            ModelState.FAILED: "model failed",
        }[self.state]
        text.append(f" {label} ", state_style)
        if self.save_label:  # right after the state: it must survive a narrow terminal
            text.append(" ")
            text.append(f" {self.save_label} ", Style(color="white", bgcolor="#c62828", bold=True))
        text.append(" ")
        text.append(self.model_label, Style(bold=True))
        if self.info is not None:
            text.append_text(sep)
            text.append(self.info.gpu_label)
            text.append_text(sep)
            text.append_text(context_gauge(self.context_used, self.info.n_ctx))
        done = self.last_done
        if done is not None:  # the stop reason first: it matters most when the line is cut short
            text.append_text(sep)
            text.append_text(small_badge(done.stop))
            text.append_text(sep)
            text.append(f"{done.tokens_per_s:.1f} tok/s")
            text.append_text(sep)
            ttft = f"{done.first_token_ms:.0f} ms" if done.first_token_ms is not None else "n/a"
            text.append(f"first token {ttft}")
        return text
