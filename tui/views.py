"""The main screen's widgets as the app's parts see them, and the notifier they report through.

The parts (:mod:`tui.reply_flow`, :mod:`tui.chat_actions`, ...) get a :class:`MainViews` and a
:class:`Notifier` instead of the app: they render into the widgets and tell the user things,
and never reach into the app's own state.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar, overload

from textual.app import App
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import ContentSwitcher

from tui.screens.main import MainScreen
from tui.widgets.chat_view import ChatView
from tui.widgets.inspector import Inspector
from tui.widgets.prompt_input import PromptInput
from tui.widgets.sampling_panel import SamplingPanel
from tui.widgets.status_bar import StatusBar
from tui.widgets.token_view import TokenView

W = TypeVar("W", bound=Widget)


class Notifier(Protocol):
    """Shows the user a short message (the app's ``notify``: always plain text)."""

    def __call__(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Show ``message``."""
        ...


class AppNotifier:
    """A Notifier that calls the app's ``notify`` as it is at the time of the call."""

    def __init__(self, app: App[Any]) -> None:
        self._app = app

    def __call__(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Show ``message`` through the app."""
        self._app.notify(message, title=title, severity=severity, timeout=timeout, markup=markup)


class _OnMainScreen(Generic[W]):
    """A MainViews attribute: the main screen's one widget of a type, looked up at each access."""

    def __init__(self, widget_type: type[W]) -> None:
        self.widget_type = widget_type

    @overload
    def __get__(self, views: None, owner: type[MainViews]) -> _OnMainScreen[W]: ...

    @overload
    def __get__(self, views: MainViews, owner: type[MainViews]) -> W: ...

    def __get__(self, views: MainViews | None, owner: type[MainViews]) -> W | _OnMainScreen[W]:
        if views is None:
            return self
        return views.main_screen.query_one(self.widget_type)


class MainViews:
    """The widgets of the main screen, looked up on it also while a dialog is on top of it."""

    def __init__(self, app: App[Any]) -> None:
        self._app = app

    @property
    def main_screen(self) -> Screen[None]:
        """The main screen, also while a dialog, the help or the command palette is on top of it.

        Widgets are looked up here, not on ``app.screen``: tokens keep streaming while a dialog
        is open, and looking for the chat view on the dialog failed (it crashed the app).
        """
        for screen in self._app.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return self._app.screen  # type: ignore[return-value]

    @property
    def quitting(self) -> bool:
        """True once the app is shutting down: its screens (and widgets) may already be gone."""
        app = self._app
        return app._exit or app._closing or app._closed or not app.screen_stack

    chat_view = _OnMainScreen(ChatView)
    """The transcript."""
    token_view = _OnMainScreen(TokenView)
    """The token-stream view."""
    status = _OnMainScreen(StatusBar)
    """The status bar."""
    panel = _OnMainScreen(SamplingPanel)
    """The sampling panel."""
    prompt = _OnMainScreen(PromptInput)
    """The prompt box."""

    @property
    def inspector(self) -> Inspector | None:
        """The token inspector, once mounted."""
        try:
            return self.main_screen.query_one(Inspector)
        except NoMatches:
            return None

    @property
    def switcher(self) -> ContentSwitcher:
        """Chat or token view."""
        return self.main_screen.query_one("#views", ContentSwitcher)

    @property
    def showing_tokens(self) -> bool:
        """Whether the token view is shown (not the chat)."""
        return self.switcher.current == "tokens"

    def show(self, view: str) -> None:
        """Show the ``chat`` (the prompt gets the keys) or the ``tokens`` view (caught up, focused)."""
        self.switcher.current = view
        if view == "tokens":
            self.token_view.reveal()
            self.token_view.focus()
        else:
            self.prompt.focus()


def is_open(app: App[Any], kind: type[Screen[Any]]) -> bool:
    """True when a screen of ``kind`` is already on ``app``'s stack: a key pressed again (or its
    palette entry chosen again) while that dialog is up opens nothing, and a second one can't clash."""
    return any(isinstance(screen, kind) for screen in app.screen_stack)

