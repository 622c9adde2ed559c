"""Saved chats in the running app (Pilot, FakeEngine): autosave, chat list, reopen, export/import."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from settings.config import Settings
from settings.sampling import SamplingMode, SamplingParams
from tests.fakes import FakeEngine
from tui.app import TokendialApp
from tui.engine.events import ReplyDone
from tui.engine.protocol import ChatEngine, LoadConfig
from tui.screens.chat_list import ChatListScreen, ConfirmDeleteScreen, TextPromptScreen
from tui.store import ChatStore, MessageStatus, default_db_path
from tui.widgets.chat_view import AssistantMessage, UserMessage

SIZE = (120, 40)
REPLY = "Hello, I am a small model.\nAsk me anything!"
"""What the FakeEngine's default script says."""


def make_app(engine: FakeEngine, data_dir: Path, **sampling: Any) -> TokendialApp:
    settings = Settings(
        model_path=data_dir.parent / "FakeLM-135M.Q4_1.gguf",
        data_dir=data_dir,
        sampling=SamplingParams(**sampling),
    )

    def factory(config: LoadConfig) -> ChatEngine:
        return engine

    return TokendialApp(settings, engine_factory=factory, config_path=data_dir.parent / "config.toml")


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool], what: str, steps: int = 500) -> None:
    for _ in range(steps):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for: {what}")


async def ready(pilot: Pilot[Any], steps: int = 500) -> TokendialApp:
    app = pilot.app
    assert isinstance(app, TokendialApp)
    await wait_for(pilot, lambda: app.model_state.value in ("ready", "failed"), "model loaded", steps)
    assert app.model_state.value == "ready"
    return app


async def ask(pilot: Pilot[Any], text: str, steps: int = 500) -> None:
    app = pilot.app
    assert isinstance(app, TokendialApp)
    app.prompt.focus()
    app.prompt.text = text
    await pilot.press("enter")
    await wait_for(
        pilot,
        lambda: not app.busy and all(r.finished for r in app.records.values()),
        "reply finished",
        steps,
    )
    await pilot.pause()


def stored_messages(data_dir: Path) -> list[tuple[str, str, str]]:
    """(role, text, status) of every message on disk, read with a separate connection."""
    conn = sqlite3.connect(default_db_path(data_dir))
    rows = conn.execute("SELECT role, text, status FROM messages ORDER BY chat_id, position").fetchall()
    conn.close()
    return rows


def chat_list(app: TokendialApp) -> ChatListScreen | None:
    """The chat list on top, once it is mounted and filled."""
    screen = app.screen
    if isinstance(screen, ChatListScreen) and screen.query(OptionList) and screen.is_mounted:
        return screen
    return None


def prompt_box(app: TokendialApp) -> Input | None:
    """The input of the text prompt on top, once it is mounted."""
    if not isinstance(app.screen, TextPromptScreen):
        return None
    found = app.screen.query(Input)
    return found.first() if found else None


def notifications(app: TokendialApp) -> str:
    return "\n".join(str(n.message) for n in app._notifications)


async def test_a_finished_reply_is_on_disk_before_the_ui_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    seen_on_disk: list[list[tuple[str, str, str]]] = []
    original_finish = AssistantMessage.finish

    async def finish_and_check(self: AssistantMessage, done: ReplyDone) -> None:
        seen_on_disk.append(stored_messages(data_dir))
        await original_finish(self, done)

    monkeypatch.setattr(AssistantMessage, "finish", finish_and_check)
    engine = FakeEngine(hold_at=3)
    app = make_app(engine, data_dir)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.prompt.text = "Hello?"
        await pilot.press("enter")
        await wait_for(pilot, engine.reached_hold.is_set, "reply in progress")
        # mid-reply the reply is already saved, as interrupted
        assert stored_messages(data_dir) == [("user", "Hello?", "finished"), ("assistant", "", "interrupted")]
        engine.release()
        await wait_for(pilot, lambda: not app.busy, "reply finished")
        await pilot.pause()
    assert seen_on_disk == [
        [
            ("user", "Hello?", "finished"),
            ("assistant", REPLY, "finished"),
        ]
    ]


async def test_reopened_chat_continues_with_its_parameters(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    chosen = SamplingParams(temperature=1.3, top_k=7, max_new_tokens=50)
    first = make_app(FakeEngine(), data_dir, temperature=0.5)
    async with first.run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        await ask(pilot, "Hello?")
        app.panel.set_params(chosen)  # the user changes the parameters after the reply
        await pilot.pause()
        assert app.live.params == chosen
        await pilot.press("ctrl+n")  # a new chat: the first one stays in the list
        await ask(pilot, "Another chat")

    engine = FakeEngine()
    second = make_app(engine, data_dir, temperature=0.8)  # a restart, with other defaults
    async with second.run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        assert app.live.params == SamplingParams(temperature=0.8)
        await pilot.press("f3")
        await wait_for(pilot, lambda: chat_list(app) is not None, "chat list")
        await pilot.pause()
        listing = app.screen.query_one(OptionList)
        assert listing.option_count == 2
        await pilot.press("down", "enter")  # the older chat
        await wait_for(pilot, lambda: bool(app.chat_view.query(UserMessage)), "chat restored")
        await pilot.pause()
        assert [m.content for m in app.chat_view.query(UserMessage)] == ["Hello?"]
        replies = list(app.chat_view.query(AssistantMessage))
        assert len(replies) == 1 and replies[0].has_class("finished") and replies[0].has_class("stop-eos")
        assert replies[0].record.events  # token events came back too
        assert app.panel.params == chosen
        assert app.live.params == chosen

        await ask(pilot, "And now?")
        # the engine got the whole conversation and the chat's parameters
        assert [m.content for m in engine.calls[-1] if m.role != "system"] == [
            "Hello?",
            REPLY,
            "And now?",
        ]
        done = list(app.records.values())[-1].done
        assert done is not None and list(done.params.values()) == [chosen]

    with ChatStore(default_db_path(data_dir)) as store:
        chats = store.list_chats()
        assert [c.title for c in chats] == ["Hello?", "Another chat"]  # continued chat is the latest
        chat = store.load_chat(chats[0].id)
        assert [m.text for m in chat.messages][2:] == [
            "And now?",
            REPLY,
        ]
        assert chat.messages[-1].reply is not None
        assert list(chat.messages[-1].reply.params.values()) == [chosen]


async def test_chat_list_search_rename_and_delete(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with ChatStore(default_db_path(data_dir)) as store:
        for prompt in ("How do penguins sleep?", "Write a haiku", "Explain top-p"):
            store.add_user_message(store.create_chat(), prompt)
    app = make_app(FakeEngine(), data_dir)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("f3")
        await wait_for(pilot, lambda: chat_list(app) is not None, "chat list")
        await pilot.pause()
        screen = chat_list(app)
        assert screen is not None
        assert [s.title for s in screen.summaries] == [
            "Explain top-p",
            "Write a haiku",
            "How do penguins sleep?",
        ]

        await pilot.press(*"PENGUIN")
        await pilot.pause()
        assert [s.title for s in screen.summaries] == ["How do penguins sleep?"]

        await pilot.press("f2")
        await wait_for(pilot, lambda: prompt_box(app) is not None, "rename box")
        field = prompt_box(app)
        assert field is not None
        assert field.value == "How do penguins sleep?"
        field.value = ""
        await pilot.press(*"Penguin naps", "enter")
        await wait_for(pilot, lambda: app.screen is screen, "back to the list")
        await pilot.press("ctrl+u", *"nap")  # ctrl+u clears the search box
        await pilot.pause()
        assert [s.title for s in screen.summaries] == ["Penguin naps"]

        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDeleteScreen), "confirmation")
        await pilot.press("n")  # keep it
        await wait_for(pilot, lambda: app.screen is screen, "back to the list")
        assert len(screen.summaries) == 1
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDeleteScreen), "confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is screen and not screen.summaries, "deleted")
        assert "No chat contains" in str(screen.query_one("#chat-list-empty").render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ChatListScreen), "list closed")
    with ChatStore(default_db_path(data_dir)) as store:
        assert sorted(c.title for c in store.list_chats()) == ["Explain top-p", "Write a haiku"]


async def test_deleting_the_open_chat_starts_a_new_one(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    app = make_app(FakeEngine(), data_dir)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await ask(pilot, "Soon gone")
        assert app.chat_session.chat_id is not None
        await pilot.press("f3")
        await wait_for(pilot, lambda: chat_list(app) is not None, "chat list")
        await pilot.pause()
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDeleteScreen), "confirmation")
        await pilot.press("y")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.chat_view.query(UserMessage), "transcript cleared")
        assert app.chat_session.chat_id is None and app.history == []
        await ask(pilot, "Fresh")
    assert [row[1] for row in stored_messages(data_dir)] == [
        "Fresh",
        REPLY,
    ]


async def test_regenerate_and_edit_keep_the_stored_chat_in_step(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    app = make_app(FakeEngine(), data_dir)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await ask(pilot, "One")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not app.busy, "regenerated")
        await pilot.pause()
        assert [r[0] for r in stored_messages(data_dir)] == ["user", "assistant"]
        await pilot.press("ctrl+l")  # take back the prompt and its reply
        await pilot.pause()
        assert stored_messages(data_dir) == []
        await pilot.press("enter")  # resend it
        await wait_for(pilot, lambda: not app.busy and len(stored_messages(data_dir)) == 2, "resent")
        assert [r[2] for r in stored_messages(data_dir)] == ["finished", "finished"]


async def test_export_and_import_from_the_app(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    app = make_app(FakeEngine(), data_dir, temperature=0.4)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.export_chat("json") is None  # nothing saved yet
        await ask(pilot, "Export me")
        assert app.action_toggle_keep_events() is True
        assert app.chat_session.chat_id is not None
        assert app.chat_session.store.load_chat(app.chat_session.chat_id).keep_events
        md = app.export_chat("md")
        js = app.export_chat("json")
        assert md is not None and js is not None
        text = md.read_text(encoding="utf-8")
        assert "# Export me" in text and "stop: **end of sequence <|im_end|>**" in text and "T 0.4" in text
        data = json.loads(js.read_text(encoding="utf-8"))
        assert data["format"] == "tokendial.chat"

        await pilot.press("ctrl+n")
        app.action_import_json()
        await wait_for(pilot, lambda: prompt_box(app) is not None, "import box")
        box = prompt_box(app)
        assert box is not None
        box.value = str(js)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.chat_view.query(UserMessage)) == 1, "imported chat open")
        assert app.chat_session.chat_id is not None
        assert [c.title for c in app.chat_session.store.list_chats()] == ["Export me", "Export me"]

        app.action_import_json()
        await wait_for(pilot, lambda: prompt_box(app) is not None, "import box")
        box = prompt_box(app)
        assert box is not None
        box.value = str(md)  # not JSON
        await pilot.press("enter")
        await wait_for(pilot, lambda: "not valid JSON" in notifications(app), "import error shown")
        assert len(app.chat_session.store.list_chats()) == 2


async def test_a_corrupt_database_gives_a_message_and_a_way_on(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    db = default_db_path(data_dir)
    db.write_bytes(b"not a database at all" * 100)
    app = make_app(FakeEngine(), data_dir)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert "damaged" in notifications(app) and "start a fresh database" in notifications(app)
        assert not app.chat_session.store.is_persistent
        await ask(pilot, "Still works")  # the chat goes on, in memory
        commands = [c.title for c in app.chat_commands(app.screen)]
        assert "Chats: start a fresh database" in commands
        app.action_fresh_chat_database()
        assert app.chat_session.store.is_persistent
        assert "kept as" in notifications(app)
        await ask(pilot, "Saved again")
    assert stored_messages(data_dir)[0][1] == "Saved again"
    assert len(list(data_dir.glob("chats.sqlite3.corrupt-*"))) == 1


@pytest.mark.real_model
async def test_real_model_reply_is_saved_and_reopened_chat_reuses_its_parameters(
    tmp_path: Path, model_path: Path
) -> None:
    data_dir = tmp_path / "data"
    greedy = SamplingParams(mode=SamplingMode.GREEDY, max_new_tokens=12, repeat_penalty=1.0)

    def settings(sampling: SamplingParams) -> Settings:
        return Settings(model_path=model_path, data_dir=data_dir, n_ctx=512, sampling=sampling)

    first = TokendialApp(settings(greedy), config_path=tmp_path / "config.toml")
    async with first.run_test(size=SIZE) as pilot:
        app = await ready(pilot, steps=6000)
        await ask(pilot, "Name three colours.", steps=6000)
        first_text = app.history[-1].content
    assert first_text

    with ChatStore(default_db_path(data_dir)) as store:
        (summary,) = store.list_chats()
        reply = store.load_chat(summary.id).messages[-1]
        assert reply.status is MessageStatus.FINISHED and reply.text == first_text
        assert reply.reply is not None and reply.reply.model is not None
        assert reply.reply.model.fingerprint == hashlib.sha256(model_path.read_bytes()).hexdigest()
        assert reply.reply.stop is not None and reply.reply.stop.kind.value in ("eos", "max_tokens")
        assert reply.reply.params and all(p == greedy for p in reply.reply.params.values())
        events = store.load_events(reply.id)
        assert events is not None and len(events) == reply.reply.token_count
        assert all(e.candidates for e in events)

    second = TokendialApp(settings(SamplingParams(temperature=1.5)), config_path=tmp_path / "config.toml")
    async with second.run_test(size=SIZE) as pilot:
        app = await ready(pilot, steps=6000)
        await pilot.press("f3")
        await wait_for(pilot, lambda: chat_list(app) is not None, "chat list")
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(app.chat_view.query(UserMessage)), "chat restored")
        assert app.live.params == greedy
        await pilot.press("ctrl+r")  # the same prompt again, with the chat's (greedy) parameters
        await wait_for(pilot, lambda: not app.busy, "regenerated", steps=6000)
        await pilot.pause()
        assert app.history[-1].content == first_text  # greedy: the same reply


async def test_the_app_says_not_saved_and_asks_before_quitting(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    app = make_app(FakeEngine(), blocker / "data")  # the data dir cannot be made: chats in memory
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        bar = app.status
        rendered = bar.render()
        assert "not saved" in str(getattr(rendered, "plain", rendered))
        assert "Cannot create the data directory" in str(bar.tooltip)
        await ask(pilot, "kept in memory")
        await app.action_quit()
        await pilot.pause()
        from tui.screens.unsaved import QuitUnsavedScreen

        assert isinstance(app.screen, QuitUnsavedScreen)
        assert [title for _, title in app.screen.chats] == ["kept in memory"]
        await pilot.press("escape")  # back: still running, nothing lost
        await pilot.pause()
        assert not isinstance(app.screen, QuitUnsavedScreen) and app.is_running


async def test_the_app_quits_at_once_when_everything_is_saved(tmp_path: Path) -> None:
    app = make_app(FakeEngine(), tmp_path / "data")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await ask(pilot, "saved")
        await app.action_quit()
        await pilot.pause()
        assert not app.is_running
