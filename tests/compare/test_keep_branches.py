"""Keeping a compare column: the others become its branches, saved in a real SQLite store and back."""

from __future__ import annotations

from pathlib import Path

import pytest

from settings.sampling import SamplingParams
from tests.compare.compare_records import COLUMN_TEXTS, columns, saved_conversation
from tui.core.autosave import restore_chat
from tui.core.conversation import Conversation, ConversationError, ReplyTurn, UserTurn
from tui.engine.events import StopKind
from tui.engine.live import LiveParams


def test_kept_column_with_the_others_as_branches_reopens_and_switches(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite3"
    chat, session = saved_conversation(path)
    chat.add_prompt("What colour is the sky?")
    record, siblings = chat.add_finished_replies(columns(), 1)
    assert siblings is not None and siblings.active == 1
    assert [r.streamed_text for r in siblings.records] == ["The sky is blue", "The sky looks grey", "Blue!"]
    assert chat.last_reply is record and chat.history[-1].content == "The sky looks grey"
    chat_id = session.chat_id
    assert chat_id is not None
    stored = session.store.load_chat(chat_id).messages
    assert [m.text for m in stored] == ["What colour is the sky?", "The sky looks grey"]
    assert stored[-1].sibling_count == 3 and stored[-1].sibling_ordinal == 1
    session.store.close()

    # Reopened in a fresh store on the same file: the kept column shows, the others are its branches.
    again, session_again = saved_conversation(path)
    assert restore_chat(again, session_again, session_again.open_chat(chat_id)) == []
    assert [type(turn) for turn in again.turns] == [UserTurn, ReplyTurn]
    shown = again.last_reply
    assert shown is not None and shown.streamed_text == "The sky looks grey"
    assert shown.done is not None and shown.done.stop.kind is StopKind.MAX_TOKENS
    reopened = again.branches.set_of(shown.reply_id)
    assert reopened is not None and reopened.active == 1
    # Each branch in turn: its text, stop reason and parameters, and the store follows each switch.
    expected = [(2, "Blue!", StopKind.EOS, 1.5), (0, "The sky is blue", StopKind.EOS, None)]
    for place, text, kind, temperature in expected:
        switched = again.switch_branch(1)
        assert switched is not None
        target, branch_set = switched
        assert branch_set.active == place and target.streamed_text == text
        assert target.done is not None and target.done.stop.kind is kind
        params = target.done.params[0]
        assert params.is_greedy if temperature is None else params.temperature == temperature
        last = session_again.store.load_chat(chat_id).messages[-1]
        assert last.text == text and last.sibling_ordinal == place and last.sibling_count == 3
        assert len(session_again.store.load_events(last.id) or ()) == len(COLUMN_TEXTS[place])
    back = again.switch_branch(1)
    assert back is not None and back[0].streamed_text == "The sky looks grey"


def test_one_finished_column_has_no_branches(tmp_path: Path) -> None:
    chat, session = saved_conversation(tmp_path / "chats.sqlite3")
    chat.add_prompt("hi")
    record, siblings = chat.add_finished_replies(columns()[:1], 0)
    assert siblings is None and chat.branches.set_of(record.reply_id) is None
    assert session.chat_id is not None
    assert session.store.load_chat(session.chat_id).messages[-1].sibling_count == 1


def test_finished_replies_need_a_prompt_and_a_place() -> None:
    chat = Conversation(LiveParams(SamplingParams()))
    with pytest.raises(ConversationError):
        chat.add_finished_replies(columns(), 0)
    chat.add_prompt("hi")
    with pytest.raises(ConversationError):
        chat.add_finished_replies(columns(), 3)
    assert len(chat.turns) == 1
