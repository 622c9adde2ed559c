"""The app's side of saved chats: autosave hooks, the chat list, reopening, export and import.

A mixin of :class:`~tui.app.TokendialApp`, kept apart so that the app file stays about the chat
itself. Every step of a chat goes to a :class:`~tui.store.session.ChatSession`; a finished reply
is committed to disk (``reply_observers`` run first) before the transcript shows it finished.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, cast

from textual.app import SystemCommand
from textual.screen import Screen

from tui.engine.events import ChatMessage
from tui.reply import ReplyRecord
from tui.screens.chat_list import ChatListScreen, TextPromptScreen, describe_store_error
from tui.store import (
    ChatStore,
    Role,
    StoreCorruptError,
    StoreError,
    default_db_path,
    move_aside,
    open_store,
)
from tui.store.records import reply_done_of
from tui.store.session import ChatSession
from tui.widgets.chat_view import AssistantMessage, UserMessage

if TYPE_CHECKING:
    from tui.app import TokendialApp
    from tui.worker import ReplyFinished


def _slug(title: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()
    return slug[:40] or "chat"


class ChatActions:
    """Saved chats for the app: call :meth:`init_chats` in ``__init__``; the hooks from the chat flow."""

    chat_session: ChatSession
    _store_problem: StoreError | None
    _open_chat_deleted: bool = False
    """The chat on screen was deleted in the chat list (cleared when the list closes)."""

    @property
    def _app(self) -> TokendialApp:
        """This object as the app it is mixed into."""
        return cast("TokendialApp", self)

    def init_chats(self, store: ChatStore | None = None) -> None:
        """Open the chat database of ``settings.data_dir`` (or use ``store``); never raises."""
        app = self._app
        if store is None:
            opened = open_store(default_db_path(app.settings.data_dir))
            store, app._store_problem = opened.store, opened.problem
        else:
            app._store_problem = None
        app.chat_session = ChatSession(store, on_error=app._chat_store_failed)
        app.chat_session.set_model(app._load_config.model_path)
        app.reply_observers.append(app._save_finished_reply)

    def report_store_problem(self) -> None:
        """Tell the user (once, at start-up) when the chat database could not be used."""
        app = self._app
        problem = app._store_problem
        if problem is None:
            return
        way_on = "Chats are kept only until you quit."
        if isinstance(problem, StoreCorruptError):
            way_on += " To start a fresh database (the damaged one is kept aside), run “Chats: start a fresh "
            way_on += "database” from the command palette (ctrl+p)."
        app.notify(
            f"{describe_store_error(problem)}\n{way_on}",
            title="Chats not saved",
            severity="error",
            timeout=20,
        )

    def _chat_store_failed(self, error: StoreError) -> None:
        app = self._app
        app.notify(
            f"{describe_store_error(error)}\nThis chat is no longer being saved; a new chat tries again.",
            title="Autosave stopped",
            severity="error",
            timeout=15,
        )

    def _save_finished_reply(self, message: ReplyFinished) -> None:
        app = self._app
        app.chat_session.reply_finished(message.reply_id, message.done, message.tokens)

    # -- the chat list ---------------------------------------------------------------------
    def action_chats(self) -> None:
        """Show the saved chats: open, rename, delete, search."""
        app = self._app
        if isinstance(app.screen, ChatListScreen):
            return

        def chosen(chat_id: int | None) -> None:
            cleared, app._open_chat_deleted = app._open_chat_deleted, False
            if chat_id is not None and (cleared or chat_id != app.chat_session.chat_id):
                app.run_worker(app.open_stored_chat(chat_id), group="open-chat", exclusive=True)
            elif cleared:
                app.run_worker(app.action_new_chat(), group="open-chat", exclusive=True)

        app.push_screen(ChatListScreen(app.chat_session.store, app.chat_session.chat_id), chosen)

    def on_chat_list_screen_chat_deleted(self, message: ChatListScreen.ChatDeleted) -> None:
        """The chat on screen was deleted: nothing more is saved into it; cleared when the list closes."""
        app = self._app
        if message.chat_id == app.chat_session.chat_id:
            app.chat_session.new_chat()
            app._open_chat_deleted = True

    async def open_stored_chat(self, chat_id: int) -> bool:
        """Show a saved chat: its messages, badges and token events, and its last parameters."""
        app = self._app
        if app.busy:
            app.notify("A reply is being generated: press Esc to cancel it first.", severity="warning")
            return False
        try:
            app.chat_session.store.load_chat(chat_id)  # fails before anything is cleared
        except StoreError as error:
            app.notify(describe_store_error(error), title="Chat not opened", severity="error")
            return False
        await app.action_new_chat()
        chat = app.chat_session.open_chat(chat_id)
        last_record: ReplyRecord | None = None
        widgets: list[UserMessage | AssistantMessage] = []
        for stored in chat.messages:
            app.history.append(ChatMessage(str(stored.role), stored.text))
            if stored.role is Role.USER:
                widgets.append(UserMessage(stored.text))
            elif stored.role is Role.ASSISTANT:
                events = app.chat_session.store.load_events(stored.id) if stored.has_events else None
                done = reply_done_of(stored, events)
                reply_id = app._next_reply_id
                app._next_reply_id += 1
                record = ReplyRecord(
                    reply_id, list(events or ()), dict(done.params), done.prompt_tokens, done
                )
                app.records[reply_id] = record
                app.restore_siblings(record, stored)
                widgets.append(AssistantMessage(record))
                last_record = record
        await app.chat_view.mount_all(widgets)
        app.chat_view.fold()
        for widget in widgets:
            if isinstance(widget, AssistantMessage) and widget.record.done is not None:
                await widget.finish(widget.record.done)
        app.label_branches()
        app.chat_view.scroll_end(animate=False)
        if last_record is not None and last_record.done is not None:
            app._token_record_id = last_record.reply_id
            app.token_view.show_reply(last_record)
            app.status.set_done(last_record.done)
        if chat.last_params is not None:
            version = app.live.set(chat.last_params)
            app.params_by_version[version] = chat.last_params
            app.panel.set_params(chat.last_params, announce=False)
        app.notify(f"Opened “{chat.title}”", title="Chats", timeout=3)
        return True

    # -- export / import -------------------------------------------------------------------
    @property
    def exports_dir(self) -> Path:
        """Where exported chats are written."""
        app = self._app
        return app.settings.data_dir / "exports"

    def export_chat(self, kind: str) -> Path | None:
        """Write the chat on screen as Markdown (``md``) or JSON (``json``); returns the file."""
        app = self._app
        chat_id = app.chat_session.chat_id
        if chat_id is None:
            app.notify("Nothing to export yet: this chat has no saved messages.", severity="warning")
            return None
        store = app.chat_session.store
        try:
            title = store.load_chat(chat_id).title
            if kind == "md":
                content = store.export_markdown(chat_id)
            else:
                content = json.dumps(store.export_json(chat_id), ensure_ascii=False, indent=1) + "\n"
            app.exports_dir.mkdir(parents=True, exist_ok=True)
            path = app.exports_dir / f"{_slug(title)}-{chat_id}.{kind}"
            path.write_text(content, encoding="utf-8")
        except StoreError as error:
            app.notify(describe_store_error(error), title="Not exported", severity="error")
            return None
        except OSError as error:
            app.notify(f"Cannot write the export: {error}", title="Not exported", severity="error")
            return None
        app.notify(f"Exported to {path}", title="Export", timeout=8)
        return path

    def action_export_markdown(self) -> None:
        """Export the chat on screen to Markdown."""
        app = self._app
        app.export_chat("md")

    def action_export_json(self) -> None:
        """Export the chat on screen to JSON (complete, re-importable)."""
        app = self._app
        app.export_chat("json")

    def action_import_json(self) -> None:
        """Ask for a JSON export file, import it and open it."""
        app = self._app

        def chosen(value: str | None) -> None:
            if value and value.strip():
                app.run_worker(app.import_chat(Path(value.strip()).expanduser()), group="open-chat")

        app.push_screen(
            TextPromptScreen(
                "Import a chat from a JSON export",
                str(app.exports_dir) + "/",
                placeholder="path/to/chat.json",
                prompt_id="import-chat",
            ),
            chosen,
        )

    async def import_chat(self, path: Path) -> int | None:
        """Import the chat in ``path`` and open it; returns its id (None, with a message, on failure)."""
        app = self._app
        try:
            data = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            app.notify(f"Cannot read {path}: {error}", title="Not imported", severity="error")
            return None
        try:
            chat_id = app.chat_session.store.import_json(data)
        except StoreError as error:
            app.notify(describe_store_error(error), title="Not imported", severity="error", timeout=10)
            return None
        await app.open_stored_chat(chat_id)
        return chat_id

    def action_fresh_chat_database(self) -> None:
        """Move a damaged chat database aside and start an empty one."""
        app = self._app
        path = default_db_path(app.settings.data_dir)
        try:
            moved = move_aside(path) if path.exists() else None
            store = ChatStore(path)
        except (OSError, StoreError) as error:
            app.notify(f"Could not start a fresh chat database: {error}", severity="error", timeout=10)
            return
        app.chat_session.store.close()
        app.chat_session.store = store
        app.chat_session.new_chat()
        app._store_problem = None
        where = f" The old one is kept as {moved}." if moved else ""
        app.notify(f"Chats are saved again, in a fresh database.{where}", title="Chats", timeout=10)

    def action_toggle_keep_events(self) -> bool | None:
        """Keep this chat's token events for good (they are otherwise kept for recent chats only)."""
        app = self._app
        chat_id = app.chat_session.chat_id
        if chat_id is None:
            app.notify("Nothing saved yet: send a prompt first.", severity="warning")
            return None
        store = app.chat_session.store
        try:
            keep = not store.load_chat(chat_id).keep_events
            store.set_keep_events(chat_id, keep)
        except StoreError as error:
            app.notify(describe_store_error(error), title="Chats", severity="error")
            return None
        retention = store.retention
        app.notify(
            "Token events of this chat are kept for good."
            if keep
            else f"Token events of this chat are kept while it is among the {retention.keep_chats} most "
            "recent chats.",
            title="Chats",
        )
        return keep

    def chat_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The saved-chat commands for the command palette."""
        app = self._app
        yield SystemCommand("Chats: open, rename, delete, search", "The saved chats (f3)", app.action_chats)
        yield SystemCommand("Chats: export to Markdown", "Readable, with parameters and stop reasons",
                            app.action_export_markdown)  # fmt: skip
        yield SystemCommand("Chats: export to JSON", "Complete and re-importable", app.action_export_json)
        yield SystemCommand(
            "Chats: import from JSON", "Add a chat exported by tokendial", app.action_import_json
        )
        yield SystemCommand(
            "Chats: keep token events of this chat",
            "Exempt its token events (and candidates) from pruning, or stop doing so",
            app.action_toggle_keep_events,
        )
        if app._store_problem is not None and isinstance(app._store_problem, StoreCorruptError):
            yield SystemCommand(
                "Chats: start a fresh database",
                "Move the damaged chat database aside and save chats again",
                app.action_fresh_chat_database,
            )
