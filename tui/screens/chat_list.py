"""The chat list: open, rename, delete (with confirmation) and search the saved chats.

Search filters as you type (titles and message text). Enter opens the highlighted chat; the
screen is dismissed with its id and the app loads it. Rename and delete happen here, on the store.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tui.core.text import clean, one_line
from tui.screens.confirm import ConfirmScreen
from tui.store import ChatStore, ChatSummary, StoreError
from tui.store.leases import Holder

LIST_LIMIT = 500
"""At most this many chats are listed (the most recent matching ones)."""


def describe_store_error(error: StoreError) -> str:
    """One notification text for a store error: what happened and the way on."""
    return f"{error.message}\n{error.hint}".strip()


OPEN_ELSEWHERE = "open in another window"


def chat_option(summary: ChatSummary, elsewhere: Holder | None = None) -> Option:
    """One chat as a row of the list: title, date and size (and whether another window is writing
    it), then the matching text or first prompt."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(one_line(summary.title, 200), style="bold")  # titles come from prompts and imported files
    when = summary.updated_at.astimezone().strftime("%Y-%m-%d %H:%M")
    text.append(f"  {when} · {summary.message_count} messages", style="dim")
    if elsewhere is not None:
        text.append(f"  ● {OPEN_ELSEWHERE}", style="bold #ffb300")
    if summary.snippet and summary.snippet != summary.title:
        text.append("\n  " + one_line(summary.snippet, 300), style="italic dim")
    return Option(text, id=f"chat-{summary.id}")


class TextPromptScreen(ModalScreen[str | None]):
    """Ask for one line of text (a new title, a file path); dismissed with it, or None on Esc."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel", tooltip="Close without changing anything"),
    ]

    def __init__(self, title: str, value: str = "", *, placeholder: str = "", prompt_id: str = "") -> None:
        super().__init__(id=prompt_id or None, classes="text-prompt")
        self._title = title
        self._value = value
        self._placeholder = placeholder

    def compose(self) -> ComposeResult:
        """A title, the input and a line on the keys."""
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            yield Input(self._value, placeholder=self._placeholder, id="prompt-value")
            yield Static("enter: OK · esc: cancel", classes="dialog-keys")

    def on_mount(self) -> None:
        """Focus the input."""
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        """Close without a value."""
        self.dismiss(None)


class ConfirmDeleteScreen(ConfirmScreen):
    """Ask before deleting a chat; dismissed with True only on an explicit yes (Keep is the default)."""

    def __init__(self, summary: ChatSummary) -> None:
        super().__init__(
            f"Delete the chat “{one_line(summary.title, 80)}”?",
            f"Its {summary.message_count} messages are deleted for good (export it first to keep a copy).",
            "Delete",
            "Keep",
            screen_id="confirm-delete",
            yes_variant="error",
        )
        self.summary = summary


class ChatListScreen(ModalScreen[int | None]):
    """Saved chats, most recent first; dismissed with the id of the chat to open (None: stay)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="chats.close", tooltip="Back to the current chat"),
        Binding("enter", "open", "Open", id="chats.open", tooltip="Open the highlighted chat"),
        Binding("f2", "rename", "Rename", id="chats.rename", tooltip="Rename the highlighted chat"),
        Binding("f8", "delete", "Delete", id="chats.delete", tooltip="Delete the highlighted chat"),
        Binding("delete", "delete", "Delete", show=False, id="chats.delete_key"),
        Binding("down", "move(1)", show=False, id="chats.down"),
        Binding("up", "move(-1)", show=False, id="chats.up"),
    ]

    class ChatDeleted(Message):
        """A chat was deleted from the list (the app forgets it if it is the one on screen)."""

        def __init__(self, chat_id: int) -> None:
            super().__init__()
            self.chat_id = chat_id

    def __init__(self, store: ChatStore, current_chat: int | None = None) -> None:
        super().__init__(id="chat-list")
        self.store = store
        self.current_chat = current_chat
        self.summaries: list[ChatSummary] = []
        self.open_elsewhere: dict[int, Holder] = {}
        """Chats another running tokendial is writing (marked in the list)."""

    def compose(self) -> ComposeResult:
        """Search box, the list, an empty-state line and the keys."""
        with Vertical(classes="dialog", id="chat-list-box"):
            yield Label("Chats", classes="dialog-title")
            yield Input(placeholder="Search titles and messages…", id="chat-search")
            yield OptionList(id="chat-options")
            yield Static("", id="chat-list-empty")
            yield Static(
                "enter: open · f2: rename · f8: delete · ↑↓: choose · esc: back",
                classes="dialog-keys",
            )

    def on_mount(self) -> None:
        """Fill the list and focus the search box."""
        self.refresh_list()
        self.query_one("#chat-search", Input).focus()

    @property
    def options(self) -> OptionList:
        """The list of chats."""
        return self.query_one("#chat-options", OptionList)

    @property
    def search(self) -> str:
        """The search text."""
        return self.query_one("#chat-search", Input).value

    def refresh_list(self, keep: int | None = None) -> None:
        """Reload the chats matching the search (highlighting ``keep`` or the current chat)."""
        elsewhere: dict[int, Holder] = {}
        try:
            self.summaries = self.store.list_chats(search=self.search, limit=LIST_LIMIT)
            elsewhere = self.store.chats_open_elsewhere()
        except StoreError as error:
            self.summaries = []
            self.notify(describe_store_error(error), title="Chats", severity="error", timeout=10)
        self.open_elsewhere = elsewhere
        options = self.options
        options.clear_options()
        options.add_options([chat_option(s, elsewhere.get(s.id)) for s in self.summaries])
        empty = self.query_one("#chat-list-empty", Static)
        if self.summaries:
            empty.update(
                f"Showing the {LIST_LIMIT} most recent: search to find older chats."
                if len(self.summaries) == LIST_LIMIT
                else ""
            )
            target = keep if keep is not None else self.current_chat
            ids = [s.id for s in self.summaries]
            options.highlighted = ids.index(target) if target in ids else 0
        elif self.search.strip():
            empty.update(
                Text(f"No chat contains “{one_line(self.search.strip(), 80)}”.")
            )  # plain: "[/]" is text
        else:
            empty.update("No saved chats yet: every chat is saved as you go.")

    @property
    def highlighted(self) -> ChatSummary | None:
        """The chat under the cursor."""
        index = self.options.highlighted
        if index is None or not 0 <= index < len(self.summaries):
            return None
        return self.summaries[index]

    @on(Input.Changed, "#chat-search")
    def _search_changed(self) -> None:
        self.refresh_list()

    @on(Input.Submitted, "#chat-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_open()

    @on(OptionList.OptionSelected, "#chat-options")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_open()

    def action_move(self, step: int) -> None:
        """Move the highlight (works while typing in the search box)."""
        if not self.summaries:
            return
        current = self.options.highlighted or 0
        self.options.highlighted = max(0, min(len(self.summaries) - 1, current + step))

    def action_open(self) -> None:
        """Open the highlighted chat."""
        summary = self.highlighted
        if summary is not None:
            self.dismiss(summary.id)

    def action_close(self) -> None:
        """Back to the current chat."""
        self.dismiss(None)

    def action_rename(self) -> None:
        """Ask for a new title for the highlighted chat."""
        summary = self.highlighted
        if summary is None:
            return

        def renamed(title: str | None) -> None:
            if title is None:
                return
            try:
                self.store.rename_chat(summary.id, title)
            except StoreError as error:
                self.notify(describe_store_error(error), title="Not renamed", severity="error")
                return
            self.refresh_list(keep=summary.id)

        # An input shows its value raw: control characters in a title (from a prompt or an imported
        # file) must not reach the terminal, so the field starts from the cleaned title.
        current = clean(summary.title)
        self.app.push_screen(TextPromptScreen("Rename chat", current, prompt_id="rename-chat"), renamed)

    def action_delete(self) -> None:
        """Delete the highlighted chat, after a confirmation."""
        summary = self.highlighted
        if summary is None:
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.store.delete_chat(summary.id)
            except StoreError as error:
                self.notify(describe_store_error(error), title="Not deleted", severity="error")
                return
            self.post_message(self.ChatDeleted(summary.id))
            self.notify(f"Deleted “{summary.title}”", title="Chats", timeout=3)
            self.refresh_list()

        self.app.push_screen(ConfirmDeleteScreen(summary), confirmed)
