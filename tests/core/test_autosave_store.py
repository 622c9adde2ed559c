"""The chat store follows a Conversation (a real SQLite database) and gives it back, branches included."""

from __future__ import annotations

from pathlib import Path

from settings.sampling import SamplingParams
from tests.core.core_helpers import done_of, tokens
from tui.core.autosave import Autosave, restore_chat
from tui.core.conversation import Conversation, ReplyTurn, UserTurn
from tui.engine.live import LiveParams
from tui.store import ChatStore, MessageStatus, Role
from tui.store.session import ChatSession

HELLO = tokens("Hel", "lo", "!", alternatives=(" Hi",))


def saved_conversation(path: Path) -> tuple[Conversation, ChatSession]:
    session = ChatSession(ChatStore(path))
    chat = Conversation(LiveParams(SamplingParams()))
    chat.observe(Autosave(session))
    return chat, session


def test_every_step_is_saved_as_it_happens(tmp_path: Path) -> None:
    chat, session = saved_conversation(tmp_path / "chats.sqlite3")
    chat.add_prompt("hi")
    record = chat.start_reply()
    assert session.chat_id is not None
    stored = session.store.load_chat(session.chat_id).messages
    assert [m.role for m in stored] == [Role.USER, Role.ASSISTANT]
    assert stored[-1].status is MessageStatus.INTERRUPTED  # until it ends
    chat.stream(record.reply_id, HELLO)
    chat.finish_reply(record.reply_id, done_of(HELLO), HELLO)
    stored = session.store.load_chat(session.chat_id).messages
    assert stored[-1].text == "Hello!" and stored[-1].status is not MessageStatus.INTERRUPTED
    chat.take_back_reply()
    assert len(session.store.load_chat(session.chat_id).messages) == 1
    chat.set_params(SamplingParams(temperature=1.25))
    assert session.store.load_chat(session.chat_id).last_params == SamplingParams(temperature=1.25)
    chat.clear()
    assert session.chat_id is None


def test_a_branched_chat_reopens_with_its_branches(tmp_path: Path) -> None:
    chat, session = saved_conversation(tmp_path / "chats.sqlite3")
    chat.add_prompt("hi")
    first = chat.start_reply()
    chat.finish_reply(first.reply_id, done_of(HELLO), HELLO)
    branch, _ = chat.branch(first.reply_id, 1, HELLO[1].candidates[1].token_id)
    rest = tokens(" there", start=2)
    chat.finish_reply(branch.reply_id, done_of((*branch.events, *rest)), rest)
    chat_id = session.chat_id
    assert chat_id is not None
    stored = session.store.load_chat(chat_id).messages
    assert stored[-1].text == "Hel Hi there" and stored[-1].sibling_count == 2

    again, session_again = saved_conversation(tmp_path / "chats.sqlite3")
    chat_again = session_again.open_chat(chat_id)
    assert restore_chat(again, session_again, chat_again) == []
    assert [type(turn) for turn in again.turns] == [UserTurn, ReplyTurn]
    shown = again.last_reply
    assert shown is not None and shown.streamed_text == "Hel Hi there"
    siblings = again.branches.set_of(shown.reply_id)
    assert siblings is not None and [r.streamed_text for r in siblings.records] == ["Hello!", "Hel Hi there"]
    assert siblings.branched_at == {shown.reply_id: 1}
    # Switching back is saved: the chat reopens on the other branch.
    switched = again.switch_branch(1)
    assert switched is not None and switched[0].streamed_text == "Hello!"
    assert session_again.store.load_chat(chat_id).messages[-1].text == "Hello!"
