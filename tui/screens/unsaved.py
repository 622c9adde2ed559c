"""Dialogs about chats that are not being saved: quitting with unsaved chats, and a chat that
another tokendial window is writing (open a copy, or read-only); and the three calls that wire
them into an app: :func:`ask_before_quit`, :func:`open_chat_asking`, :func:`watch_save_state`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Input, Label, Static

from tui.core.text import one_line
from tui.store import StoredChat, StoreError
from tui.store.errors import ChatInUseError
from tui.store.export import write_json_exports
from tui.store.leases import in_use_error
from tui.store.session import ChatSession, OpenMode
from tui.widgets.status_bar import StatusBar

SHOWN_TITLES = 6
"""At most this many unsaved chats are named; the rest are counted."""


def _titles(chats: Sequence[tuple[int, str]]) -> Text:
    text = Text()
    for _, title in chats[:SHOWN_TITLES]:
        text.append(f"• {one_line(title, 60)}\n")
    if len(chats) > SHOWN_TITLES:
        text.append(f"… and {len(chats) - SHOWN_TITLES} more\n", style="dim")
    return text


class QuitUnsavedScreen(ModalScreen[bool]):
    """Asked before quitting while some chats are not saved: export them, quit anyway, or stay.

    Dismissed with True to quit (after a successful export, or without one), False to stay.
    ``export`` writes the chats to a directory and returns the files (``exported`` keeps them).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stay", "Back", id="quit_unsaved.back", tooltip="Back to the app; nothing is lost"),
    ]

    def __init__(
        self,
        chats: Sequence[tuple[int, str]],
        reason: str,
        export: Callable[[Path], list[Path]],
        directory: Path,
    ) -> None:
        super().__init__(id="quit-unsaved", classes="text-prompt")
        self.chats = list(chats)
        self.reason = reason
        self.export = export
        self.directory = directory
        self.exported: list[Path] = []

    def compose(self) -> ComposeResult:
        """What is not saved and why, where to export it, and three buttons (Back is focused)."""
        count = len(self.chats)
        with Vertical(classes="dialog"):
            yield Label(
                f"{count} chat{'s are' if count != 1 else ' is'} not saved: quit anyway?",
                classes="dialog-title",
            )
            yield Static(Text(self.reason), id="quit-unsaved-reason")
            yield Static(_titles(self.chats), id="quit-unsaved-chats")
            yield Label("Export them (JSON, re-importable) to:")
            yield Input(str(self.directory), id="quit-export-dir")
            yield Static("", id="quit-export-result")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export and quit", variant="primary", id="quit-export")
                yield Button("Quit without saving", variant="error", id="quit-anyway")
                yield Button("Back", id="quit-back")

    def on_mount(self) -> None:
        """Back is the default: a stray Enter loses nothing."""
        self.query_one("#quit-back", Button).focus()

    @on(Button.Pressed, "#quit-export")
    @on(Input.Submitted, "#quit-export-dir")
    def _export(self, event: Button.Pressed | Input.Submitted) -> None:
        event.stop()
        directory = Path(self.query_one("#quit-export-dir", Input).value.strip() or ".").expanduser()
        try:
            self.exported = self.export(directory)
        except (OSError, StoreError) as error:
            detail = f"{error.message} {error.hint}".strip() if isinstance(error, StoreError) else str(error)
            self.query_one("#quit-export-result", Static).update(
                Text(
                    f"Not exported: {detail}. Pick another directory, or quit without saving.",
                    style="bold red",
                )
            )
            return
        self.dismiss(True)

    @on(Button.Pressed, "#quit-anyway")
    def _quit(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(True)

    @on(Button.Pressed, "#quit-back")
    def _back(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(False)

    def action_stay(self) -> None:
        """Back to the app."""
        self.dismiss(False)


class ChatInUseScreen(ModalScreen[OpenMode | None]):
    """A chat another tokendial window is writing: open a copy, open it read-only, or leave it.

    Dismissed with OpenMode.COPY, OpenMode.READ_ONLY, or None.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "choose('copy')", "Copy", id="chat_in_use.copy", tooltip="Go on with a copy here"),
        Binding("r", "choose('read-only')", "Read-only", id="chat_in_use.read_only", tooltip="Look only"),
        Binding(
            "escape", "choose('')", "Cancel", id="chat_in_use.cancel", tooltip="Leave it to the other window"
        ),
    ]

    def __init__(self, error: ChatInUseError) -> None:
        super().__init__(id="chat-in-use", classes="text-prompt")
        self.error = error

    def compose(self) -> ComposeResult:
        """The message and three buttons (Copy is focused)."""
        with Vertical(classes="dialog"):
            yield Label("Open in another window", classes="dialog-title")
            yield Static(Text(self.error.message), id="in-use-message")
            yield Static(
                Text(
                    "Two windows writing one chat would mix two conversations into it. A copy goes on "
                    "here on its own; read-only shows it without saving anything."
                )
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Open a copy (c)", variant="primary", id="in-use-copy")
                yield Button("Read-only (r)", id="in-use-read-only")
                yield Button("Cancel (esc)", id="in-use-cancel")

    def on_mount(self) -> None:
        """A copy is the default: it loses nothing and mixes nothing."""
        self.query_one("#in-use-copy", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        choice = {"in-use-copy": "copy", "in-use-read-only": "read-only"}.get(event.button.id or "", "")
        self.action_choose(choice)

    def action_choose(self, choice: str) -> None:
        """Close with the chosen way to open the chat ('' = cancel)."""
        self.dismiss(OpenMode(choice) if choice else None)


def unsaved_titles(session: ChatSession) -> list[tuple[int, str]]:
    """The chats quitting would lose, with their titles (as far as the store can still read them)."""
    chats = []
    for chat_id in session.unsaved_chats():
        try:
            title = session.store.load_chat(chat_id).title
        except StoreError:
            title = f"chat {chat_id}"
        chats.append((chat_id, title))
    return chats


def ask_before_quit(
    app: App[Any], session: ChatSession, directory: Path, quit_app: Callable[[], object]
) -> None:
    """Quit at once when every chat is saved; else ask first (QuitUnsavedScreen, with an export)."""
    chats = unsaved_titles(session)
    if not chats:
        quit_app()
        return

    def answered(quit_now: bool | None) -> None:
        if quit_now:
            quit_app()

    export = functools.partial(write_json_exports, session.store, [chat_id for chat_id, _ in chats])
    app.push_screen(QuitUnsavedScreen(chats, session.save_state.reason, export, directory), answered)


def open_chat_asking(
    app: App[Any], session: ChatSession, chat_id: int, opened: Callable[[StoredChat], object]
) -> None:
    """Open a stored chat for writing; when another window writes it, ask (copy, read-only, cancel).

    ``opened`` gets the chat that is now on screen (the copy, when one was made); a store error is
    a notification and nothing changes.
    """

    def open_as(mode: OpenMode) -> None:
        try:
            chat = session.open_chat(chat_id, mode)
        except ChatInUseError as error:
            app.push_screen(ChatInUseScreen(error), chosen)
            return
        except StoreError as error:
            app.notify(f"{error.message}\n{error.hint}".strip(), title="Chat not opened", severity="error")
            return
        opened(chat)

    def chosen(mode: OpenMode | None) -> None:
        if mode is not None:
            open_as(mode)

    open_as(OpenMode.WRITE)


def watch_save_state(app: App[Any], session: ChatSession, bar: StatusBar, *, every_s: float = 2.0) -> Timer:
    """Keep the status bar's "not saved" segment in step with the session (and look at the file
    every ``every_s``, so a deleted database shows even while nothing is written)."""
    session.on_state = bar.set_save_state
    bar.set_save_state(session.save_state)
    return app.set_interval(every_s, session.poll)


async def choose_open_mode(app: App[Any], session: ChatSession, chat_id: int) -> OpenMode | None:
    """How to open chat ``chat_id``: WRITE when no other window writes it, else the user's choice
    (COPY, READ_ONLY, or None for cancel). Call it from a worker (it waits for the dialog)."""
    try:
        holder = session.store.chats_open_elsewhere().get(chat_id)
        if holder is None:
            return OpenMode.WRITE
        title = session.store.load_chat(chat_id).title
    except StoreError:
        return OpenMode.WRITE  # opening it reports the error
    error = in_use_error(title, holder, session.store.path)
    return await app.push_screen_wait(ChatInUseScreen(error))
