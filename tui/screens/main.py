"""The main screen: transcript or token view, prompt box, sampling panel, status bar, footer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer

from settings.sampling import SamplingParams
from tui.widgets.chat_view import ChatView
from tui.widgets.confidence_strip import ConfidenceStrip
from tui.widgets.prompt_input import PromptInput
from tui.widgets.sampling_panel import SamplingPanel
from tui.widgets.status_bar import StatusBar
from tui.widgets.token_view import TokenView


class TokenPane(Vertical):
    """The bordered frame of the token view (which scrolls itself), with the confidence strip on top."""

    BORDER_TITLE = "Tokens"

    def on_confidence_strip_jump_requested(self, message: ConfidenceStrip.JumpRequested) -> None:
        """A click on the strip: select that token in the token view."""
        message.stop()
        view = self.query_one(TokenView)
        view.cursor = message.index
        view.focus()


class MainScreen(Screen[None]):
    """Layout only; the app owns the state and reacts to the widgets' messages."""

    def __init__(
        self, params: SamplingParams, presets: dict[str, SamplingParams], defaults: SamplingParams
    ) -> None:
        super().__init__(id="main")
        self._params = params
        self._presets = presets
        self._defaults = defaults

    def compose(self) -> ComposeResult:
        """Conversation column (switchable view + prompt) beside the sampling panel; status; footer."""
        with Horizontal(id="body"):
            with Vertical(id="conversation"):
                with ContentSwitcher(initial="chat", id="views"):
                    yield ChatView(id="chat")
                    with TokenPane(id="tokens"):
                        yield ConfidenceStrip(id="confidence")
                        yield TokenView(id="token-view")
                yield PromptInput(id="prompt")
            yield SamplingPanel(self._params, self._presets, self._defaults, id="sampling")
        yield StatusBar(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Focus the prompt box."""
        self.query_one(PromptInput).focus()
