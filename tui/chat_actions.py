"""The saved-chats part of the app: the chat list, reopening, export and import, the database itself.

A collaborator of :class:`~tui.app.TokendialApp` (composed, not mixed in): it gets the store
session, the conversation, the reply flow, the views and a notifier. Saving as the chat goes is
not done here: the store observes the conversation (:class:`~tui.core.autosave.Autosave`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.app import App

from settings.config import Settings
from tui.core.autosave import restore_chat
from tui.core.conversation import ReplyTurn, UserTurn
from tui.reply_flow import ReplyFlow
from tui.screens.chat_list import ChatListScreen, TextPromptScreen, describe_store_error
from tui.screens.unsaved import choose_open_mode
from tui.store import ChatStore, StoreCorruptError, StoreError, default_db_path, move_aside, open_store
from tui.store.session import ChatSession
from tui.views import MainViews, Notifier, is_open
from tui.widgets.chat_view import AssistantMessage, UserMessage


def _slug(title: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()
    return slug[:40] or "chat"


class ChatActions:
    """Saved chats: the list (F3), open, export, import, keep token events, a fresh database."""

    def __init__(
        self,
        app: App[Any],
        settings: Settings,
        session: ChatSession,
        replies: ReplyFlow,
        views: MainViews,
        notify: Notifier,
        *,
        new_chat: Callable[[], Awaitable[None]],
        store_problem: StoreError | None = None,
    ) -> None:
        self._app = app
        self.settings = settings
        self.session = session
        self.replies = replies
        self.conversation = replies.conversation
        self.views = views
        self.notify = notify
        self._new_chat = new_chat
        """Clears the screen for a new chat (the app's whole "new chat", its other parts included)."""
        self.store_problem = store_problem
        """Why the chat database could not be used at start-up (None: it is used)."""
        self._open_chat_deleted = False
        """The chat on screen was deleted in the chat list (cleared when the list closes)."""

    @staticmethod
    def open_session(settings: Settings) -> tuple[ChatSession, StoreError | None]:
        """The chat database of ``settings.data_dir`` in a session (never raises: a problem comes back)."""
        opened = open_store(default_db_path(settings.data_dir))
        return ChatSession(opened.store, problem=opened.problem), opened.problem

    def report_store_problem(self) -> None:
        """Tell the user (once, at start-up) when the chat database could not be used."""
        problem = self.store_problem
        if problem is None:
            return
        way_on = "Chats are kept only until you quit."
        if isinstance(problem, StoreCorruptError):
            way_on += " To start a fresh database (the damaged one is kept aside), run “Chats: start a fresh "
            way_on += "database” from the command palette (ctrl+p)."
        self.notify(
            f"{describe_store_error(problem)}\n{way_on}",
            title="Chats not saved",
            severity="error",
            timeout=20,
        )

    def store_failed(self, error: StoreError) -> None:
        """Autosave stopped (the session calls this once per chat)."""
        self.notify(
            f"{describe_store_error(error)}\nThis chat is no longer being saved; a new chat tries again.",
            title="Autosave stopped",
            severity="error",
            timeout=15,
        )

    # -- the chat list ---------------------------------------------------------------------
    def show_chats(self) -> None:
        """Show the saved chats: open, rename, delete, search."""
        app = self._app
        if is_open(app, ChatListScreen):
            return

        def chosen(chat_id: int | None) -> None:
            cleared, self._open_chat_deleted = self._open_chat_deleted, False
            if chat_id is not None and (cleared or chat_id != self.session.chat_id):
                app.run_worker(self.open_stored_chat(chat_id), group="open-chat", exclusive=True)
            elif cleared:
                app.run_worker(self._new_chat(), group="open-chat", exclusive=True)

        app.push_screen(ChatListScreen(self.session.store, self.session.chat_id), chosen)

    def chat_deleted(self, message: ChatListScreen.ChatDeleted) -> None:
        """The chat on screen was deleted: nothing more is saved into it; cleared when the list closes."""
        if message.chat_id == self.session.chat_id:
            self.session.new_chat()
            self._open_chat_deleted = True

    async def open_stored_chat(self, chat_id: int) -> bool:
        """Show a saved chat: its messages, badges and token events, and its last parameters."""
        if self.replies.busy:
            self.notify("A reply is being generated: press Esc to cancel it first.", severity="warning")
            return False
        try:
            self.session.store.load_chat(chat_id)  # fails before anything is cleared
        except StoreError as error:
            self.notify(describe_store_error(error), title="Chat not opened", severity="error")
            return False
        mode = await choose_open_mode(self._app, self.session, chat_id)  # another window writes it?
        if mode is None:
            return False
        await self._new_chat()
        try:
            chat = self.session.open_chat(chat_id, mode)
        except StoreError as error:  # e.g. claimed by another window just now
            self.notify(describe_store_error(error), title="Chat not opened", severity="error")
            return False
        for problem in restore_chat(self.conversation, self.session, chat):
            self.notify(problem, severity="warning")
        widgets: list[UserMessage | AssistantMessage] = []
        for turn in self.conversation.turns:
            if isinstance(turn, UserTurn):
                widgets.append(UserMessage(turn.text))
            elif isinstance(turn, ReplyTurn):
                widgets.append(AssistantMessage(turn.record))
        views = self.views
        await views.chat_view.mount_all(widgets)
        views.chat_view.fold()
        for widget in widgets:
            if isinstance(widget, AssistantMessage) and widget.record.done is not None:
                await widget.finish(widget.record.done)
        self.replies.label_branches()
        views.chat_view.scroll_end(animate=False)
        last = self.conversation.replies[-1] if self.conversation.replies else None
        if last is not None and last.done is not None:
            views.token_view.show_reply(last)
            views.status.set_done(last.done)
        if chat.last_params is not None:
            views.panel.set_params(chat.last_params, announce=False)
        self.notify(f"Opened “{chat.title}”", title="Chats", timeout=3)
        return True

    # -- export / import -------------------------------------------------------------------
    @property
    def exports_dir(self) -> Path:
        """Where exported chats are written."""
        return self.settings.data_dir / "exports"

    def export_chat(self, kind: str) -> Path | None:
        """Write the chat on screen as Markdown (``md``) or JSON (``json``); returns the file."""
        chat_id = self.session.chat_id
        if chat_id is None:
            self.notify("Nothing to export yet: this chat has no saved messages.", severity="warning")
            return None
        store = self.session.store
        try:
            title = store.load_chat(chat_id).title
            if kind == "md":
                content = store.export_markdown(chat_id)
            else:
                content = json.dumps(store.export_json(chat_id), ensure_ascii=False, indent=1) + "\n"
            self.exports_dir.mkdir(parents=True, exist_ok=True)
            path = self.exports_dir / f"{_slug(title)}-{chat_id}.{kind}"
            path.write_text(content, encoding="utf-8")
        except StoreError as error:
            self.notify(describe_store_error(error), title="Not exported", severity="error")
            return None
        except OSError as error:
            self.notify(f"Cannot write the export: {error}", title="Not exported", severity="error")
            return None
        self.notify(f"Exported to {path}", title="Export", timeout=8)
        return path

    def ask_import(self) -> None:
        """Ask for a JSON export file, import it and open it."""

        def chosen(value: str | None) -> None:
            if value and value.strip():
                self._app.run_worker(self.import_chat(Path(value.strip()).expanduser()), group="open-chat")

        self._app.push_screen(
            TextPromptScreen(
                "Import a chat from a JSON export",
                str(self.exports_dir) + "/",
                placeholder="path/to/chat.json",
                prompt_id="import-chat",
            ),
            chosen,
        )

    async def import_chat(self, path: Path) -> int | None:
        """Import the chat in ``path`` and open it; returns its id (None, with a message, on failure)."""
        try:
            data = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            self.notify(f"Cannot read {path}: {error}", title="Not imported", severity="error")
            return None
        try:
            chat_id = self.session.store.import_json(data)
        except StoreError as error:
            self.notify(describe_store_error(error), title="Not imported", severity="error", timeout=10)
            return None
        await self.open_stored_chat(chat_id)
        return chat_id

    def fresh_database(self) -> None:
        """Move a damaged chat database aside and start an empty one."""
        path = default_db_path(self.settings.data_dir)
        try:
            moved = move_aside(path) if path.exists() else None
            store = ChatStore(path)
        except (OSError, StoreError) as error:
            self.notify(f"Could not start a fresh chat database: {error}", severity="error", timeout=10)
            return
        self.session.store.close()
        self.session.store = store
        self.session.new_chat()
        self.store_problem = None
        where = f" The old one is kept as {moved}." if moved else ""
        self.notify(f"Chats are saved again, in a fresh database.{where}", title="Chats", timeout=10)

    def toggle_keep_events(self) -> bool | None:
        """Keep this chat's token events for good (they are otherwise kept for recent chats only)."""
        chat_id = self.session.chat_id
        if chat_id is None:
            self.notify("Nothing saved yet: send a prompt first.", severity="warning")
            return None
        store = self.session.store
        try:
            keep = not store.load_chat(chat_id).keep_events
            store.set_keep_events(chat_id, keep)
        except StoreError as error:
            self.notify(describe_store_error(error), title="Chats", severity="error")
            return None
        retention = store.retention
        self.notify(
            "Token events of this chat are kept for good."
            if keep
            else f"Token events of this chat are kept while it is among the {retention.keep_chats} most "
            "recent chats.",
            title="Chats",
        )
        return keep

    @property
    def corrupt_store(self) -> bool:
        """The database could not be opened because it is damaged (a fresh one can be started)."""
        return isinstance(self.store_problem, StoreCorruptError)
