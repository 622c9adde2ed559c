"""The store's UI parts on their own (Pilot, a tiny host app with the real app.tcss): the status
bar's "not saved" segment, the quit-with-unsaved-chats dialog, the chat-in-use dialog, and the
chat list's "open in another window" mark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Input, Static

import tui
from settings.sampling import SamplingParams
from tui.screens.chat_list import OPEN_ELSEWHERE, ChatListScreen
from tui.screens.unsaved import (
    ChatInUseScreen,
    QuitUnsavedScreen,
    ask_before_quit,
    choose_open_mode,
    open_chat_asking,
    watch_save_state,
)
from tui.store import ChatStore
from tui.store.errors import ChatInUseError
from tui.store.export import write_json_exports
from tui.store.session import SAVED, ChatSession, OpenMode, SaveState
from tui.widgets.status_bar import StatusBar

APP_CSS = Path(tui.__file__).parent / "app.tcss"


class Host(App[None]):
    """Just a status bar, with the app's stylesheet; records what dialogs are dismissed with."""

    CSS_PATH = str(APP_CSS)

    def __init__(self) -> None:
        super().__init__()
        self.results: list[Any] = []

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")

    def show(self, screen: Screen[Any]) -> None:
        self.push_screen(screen, self.results.append)


def status_text(bar: StatusBar) -> str:
    rendered = bar.render()
    return str(getattr(rendered, "plain", rendered))


async def test_the_status_bar_says_not_saved_until_it_is() -> None:
    app = Host()
    async with app.run_test(size=(60, 5)) as pilot:
        bar = app.query_one(StatusBar)
        assert "not saved" not in status_text(bar)
        bar.set_save_state(SaveState(False, "not saved", "Chats are kept in memory only."))
        await pilot.pause()
        assert "not saved" in status_text(bar) and bar.tooltip == "Chats are kept in memory only."
        assert status_text(bar).index("not saved") < 20  # first, so a narrow terminal keeps it
        bar.set_save_state(SaveState(False, "read-only", "Open elsewhere."))
        assert "read-only" in status_text(bar)
        bar.set_save_state(SAVED)
        assert "not saved" not in status_text(bar) and "read-only" not in status_text(bar)
        assert bar.tooltip is None


def memory_chats() -> tuple[ChatStore, list[tuple[int, str]]]:
    store = ChatStore.in_memory()
    session = ChatSession(store)
    chats = []
    for title in ("first unsaved", "second unsaved"):
        session.new_chat()
        session.user_message(title, SamplingParams())
        assert session.chat_id is not None
        chats.append((session.chat_id, title))
    assert session.unsaved_chats() == [c for c, _ in chats]
    return store, chats


async def test_quitting_with_unsaved_chats_exports_them(tmp_path: Path) -> None:
    store, chats = memory_chats()
    target = tmp_path / "rescued"
    app = Host()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = QuitUnsavedScreen(
            chats,
            "Chats are kept in memory only.",
            lambda d: write_json_exports(store, [c for c, _ in chats], d),
            target,
        )
        app.show(screen)
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "quit-back"  # a stray enter loses nothing
        assert "first unsaved" in str(screen.query_one("#quit-unsaved-chats", Static).render())
        await pilot.click("#quit-export")
        await pilot.pause()
        assert app.results == [True]
    assert sorted(p.name for p in target.iterdir()) == ["first-unsaved-1.json", "second-unsaved-2.json"]
    again = ChatStore.in_memory()
    chat_id = again.import_json((target / "first-unsaved-1.json").read_text())
    assert [m.text for m in again.load_chat(chat_id).messages] == ["first unsaved"]


async def test_an_export_that_fails_keeps_the_dialog_open(tmp_path: Path) -> None:
    store, chats = memory_chats()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    app = Host()
    async with app.run_test(size=(100, 30)) as pilot:
        app.show(QuitUnsavedScreen(chats, "why", lambda d: write_json_exports(store, [1, 2], d), blocker))
        await pilot.pause()
        await pilot.click("#quit-export")
        await pilot.pause()
        assert app.results == []  # still asking
        result = str(app.screen.query_one("#quit-export-result", Static).render())
        assert "Not exported" in result
        field = app.screen.query_one("#quit-export-dir", Input)
        field.value = str(tmp_path / "elsewhere")
        field.focus()
        await pilot.press("enter")  # Enter exports too (a second click within 0.2 s is ignored)
        await pilot.pause()
        assert app.results == [True]
        assert len(list((tmp_path / "elsewhere").iterdir())) == 2
        app.show(QuitUnsavedScreen(chats, "why", lambda d: [], tmp_path))
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        app.show(QuitUnsavedScreen(chats, "why", lambda d: [], tmp_path))
        await pilot.pause()
        await pilot.click("#quit-anyway")
        await pilot.pause()
        assert app.results == [True, False, True]


async def test_a_chat_in_use_offers_a_copy_or_read_only(db_path: Path) -> None:
    first, second = ChatSession(ChatStore(db_path)), ChatSession(ChatStore(db_path))
    first.user_message("busy chat", SamplingParams())
    assert first.chat_id is not None
    try:
        second.open_chat(first.chat_id, OpenMode.WRITE)
        raise AssertionError("not refused")
    except ChatInUseError as error:
        refused = error
    app = Host()
    async with app.run_test(size=(100, 30)) as pilot:
        for key in ("c", "r", "escape"):
            app.show(ChatInUseScreen(refused))
            await pilot.pause()
            assert "busy chat" in str(app.screen.query_one("#in-use-message", Static).render())
            await pilot.press(key)
            await pilot.pause()
        assert app.results == [OpenMode.COPY, OpenMode.READ_ONLY, None]
    first.store.close()
    second.store.close()


async def test_the_chat_list_marks_chats_open_elsewhere(db_path: Path) -> None:
    other = ChatSession(ChatStore(db_path))
    other.user_message("written by the other window", SamplingParams())
    mine = ChatStore(db_path)
    mine.add_user_message(mine.create_chat(), "only mine")
    app = Host()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = ChatListScreen(mine)
        app.show(screen)
        await pilot.pause()
        rows = {str(screen.options.get_option_at_index(i).prompt) for i in range(screen.options.option_count)}
        marked = [row for row in rows if OPEN_ELSEWHERE in row]
        assert len(rows) == 2 and len(marked) == 1 and "written by the other window" in marked[0]
        other.store.close()  # the other window quits: the mark goes
        screen.refresh_list()
        await pilot.pause()
        rows = {str(screen.options.get_option_at_index(i).prompt) for i in range(screen.options.option_count)}
        assert not any(OPEN_ELSEWHERE in row for row in rows)
    mine.close()


class Wired(Host):
    """A host wired like the app will be: the status bar watches the session; quit asks first."""

    def __init__(self, session: ChatSession, exports: Path) -> None:
        super().__init__()
        self.session = session
        self.exports = exports
        self.quit_called = 0
        self.opened: list[int] = []

    def on_mount(self) -> None:
        watch_save_state(self, self.session, self.query_one(StatusBar), every_s=0.05)

    def ask_quit(self) -> None:
        ask_before_quit(self, self.session, self.exports, self.count_quit)

    def count_quit(self) -> None:
        self.quit_called += 1

    def open(self, chat_id: int) -> None:
        open_chat_asking(self, self.session, chat_id, lambda chat: self.opened.append(chat.id))


async def test_wired_quit_asks_only_when_something_is_unsaved(tmp_path: Path, db_path: Path) -> None:
    saved = ChatSession(ChatStore(db_path))
    saved.user_message("on disk", SamplingParams())
    app = Wired(saved, tmp_path / "exports")
    async with app.run_test(size=(100, 30)) as pilot:
        app.ask_quit()
        await pilot.pause()
        assert app.quit_called == 1 and not isinstance(app.screen, QuitUnsavedScreen)
    saved.store.close()

    memory = ChatSession(ChatStore.in_memory(), problem=None)
    memory.user_message("only in memory", SamplingParams())
    app = Wired(memory, tmp_path / "exports")
    async with app.run_test(size=(100, 30)) as pilot:
        assert "not saved" in status_text(app.query_one(StatusBar))
        app.ask_quit()
        await pilot.pause()
        assert isinstance(app.screen, QuitUnsavedScreen) and app.quit_called == 0
        await pilot.press("escape")
        await pilot.pause()
        assert app.quit_called == 0
        app.ask_quit()
        await pilot.pause()
        await pilot.click("#quit-export")
        await pilot.pause()
        assert app.quit_called == 1
    assert [p.name for p in (tmp_path / "exports").iterdir()] == ["only-in-memory-1.json"]


async def test_wired_status_bar_shows_a_deleted_database(tmp_path: Path, db_path: Path) -> None:
    session = ChatSession(ChatStore(db_path))
    session.user_message("before", SamplingParams())
    app = Wired(session, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        bar = app.query_one(StatusBar)
        assert "not saved" not in status_text(bar)
        for suffix in ("", "-wal", "-shm"):
            db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
        for _ in range(100):  # the poll timer finds it without any write
            await pilot.pause(0.02)
            if "not saved" in status_text(bar):
                break
        assert "not saved" in status_text(bar) and "deleted or replaced" in str(bar.tooltip)
    session.store.close()


async def test_wired_open_of_a_chat_in_use_asks(tmp_path: Path, db_path: Path) -> None:
    other = ChatSession(ChatStore(db_path))
    other.user_message("theirs", SamplingParams())
    assert other.chat_id is not None
    mine = ChatSession(ChatStore(db_path))
    app = Wired(mine, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        app.open(other.chat_id)
        await pilot.pause()
        assert isinstance(app.screen, ChatInUseScreen) and app.opened == []
        await pilot.press("c")
        await pilot.pause()
        assert len(app.opened) == 1 and app.opened[0] != other.chat_id  # a copy
        app.open(other.chat_id)
        await pilot.pause()
        await pilot.press("r")
        await pilot.pause()
        assert app.opened[-1] == other.chat_id and "read-only" in status_text(app.query_one(StatusBar))
        other.new_chat()  # the other window lets go: opening it now just opens it
        app.open(app.opened[-1])
        await pilot.pause()
        assert not isinstance(app.screen, ChatInUseScreen)
        assert "read-only" not in status_text(app.query_one(StatusBar))
    other.store.close()
    mine.store.close()


async def test_choose_open_mode_asks_only_for_a_chat_in_use(db_path: Path) -> None:
    other = ChatSession(ChatStore(db_path))
    other.user_message("theirs", SamplingParams())
    assert other.chat_id is not None
    mine = ChatSession(ChatStore(db_path))
    mine.user_message("mine", SamplingParams())
    assert mine.chat_id is not None
    app = Host()
    async with app.run_test(size=(100, 30)) as pilot:

        async def choose(chat_id: int) -> None:
            app.results.append(await choose_open_mode(app, mine, chat_id))

        app.run_worker(choose(mine.chat_id))
        await pilot.pause()
        app.run_worker(choose(other.chat_id))
        await pilot.pause()
        assert isinstance(app.screen, ChatInUseScreen)
        await pilot.press("r")
        await pilot.pause()
        assert app.results == [OpenMode.WRITE, OpenMode.READ_ONLY]
    other.store.close()
    mine.store.close()
