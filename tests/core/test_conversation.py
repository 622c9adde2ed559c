"""The Conversation without a screen: turns, records, ids, branches, and what its observers are told."""

from __future__ import annotations

import pytest

from settings.sampling import SamplingParams
from tests.core.core_helpers import Recorder, done_of, tokens
from tui.core.conversation import Conversation, ConversationError, ReplyTurn, SystemTurn, UserTurn
from tui.engine.events import ChatMessage
from tui.engine.live import LiveParams

HELLO = tokens("Hel", "lo", "!", alternatives=(" Hi",))


def conversation(system_prompt: str = "Be brief.") -> tuple[Conversation, Recorder]:
    chat = Conversation(LiveParams(SamplingParams()), system_prompt=system_prompt)
    recorder = Recorder()
    chat.observe(recorder)
    return chat, recorder


def answered(chat: Conversation, prompt: str = "hi") -> int:
    """Send ``prompt`` and finish its reply with HELLO; returns the reply id."""
    chat.add_prompt(prompt)
    record = chat.start_reply()
    chat.stream(record.reply_id, HELLO)
    chat.finish_reply(record.reply_id, done_of(HELLO), HELLO)
    return record.reply_id


def test_send_stream_finish_builds_the_history_the_engine_gets() -> None:
    chat, recorder = conversation()
    chat.add_prompt("hi")
    record = chat.start_reply()
    assert chat.active is record and record.reply_id == 1
    # The reply being generated is not part of what the engine is sent.
    assert chat.messages() == (ChatMessage("system", "Be brief."), ChatMessage("user", "hi"))
    chat.stream(record.reply_id, HELLO[:2])
    chat.stream(record.reply_id, HELLO[2:])
    assert record.streamed_text == "Hello!"
    finished = chat.finish_reply(record.reply_id, done_of(HELLO), HELLO)
    assert finished.record is record and finished.tokens == HELLO
    assert chat.active is None and record.done is not None and record.prompt_tokens == 10
    assert chat.history == [ChatMessage("user", "hi"), ChatMessage("assistant", "Hello!")]
    assert chat.records == {1: record} and chat.last_reply is record
    assert recorder.names() == [
        "prompt_added", "reply_started", "reply_streamed", "reply_streamed", "reply_finished",
    ]  # fmt: skip
    assert recorder.calls[-1] == ("reply_finished", (1, 3, None))


def test_no_system_prompt_means_none_is_sent() -> None:
    chat, _ = conversation(system_prompt="")
    chat.add_prompt("hi")
    assert chat.messages() == (ChatMessage("user", "hi"),)


def test_a_second_reply_cannot_start_while_one_runs() -> None:
    chat, _ = conversation()
    chat.add_prompt("hi")
    chat.start_reply()
    with pytest.raises(ConversationError):
        chat.add_prompt("again")
    with pytest.raises(ConversationError):
        chat.start_reply()


def test_finish_fills_in_tokens_the_stream_missed() -> None:
    chat, _ = conversation()
    chat.add_prompt("hi")
    record = chat.start_reply()
    chat.stream(record.reply_id, HELLO[:1])
    chat.finish_reply(record.reply_id, done_of(HELLO), HELLO)
    assert [event.text for event in record.events] == ["Hel", "lo", "!"]


def test_a_reply_running_when_the_chat_is_cleared_still_finishes_into_the_store() -> None:
    chat, recorder = conversation()
    chat.add_prompt("hi")
    record = chat.start_reply()
    chat.clear()
    assert chat.turns == [] and chat.active is record  # still running: nothing new can start
    finished = chat.finish_reply(record.reply_id, done_of(HELLO), HELLO)
    assert finished.record is None and chat.active is None
    assert recorder.names()[-2:] == ["cleared", "reply_finished"]
    assert chat.history == []


def test_regenerate_takes_back_the_last_reply_only() -> None:
    chat, recorder = conversation()
    answered(chat)
    removed = chat.take_back_reply()
    assert removed.reply_id == 1 and chat.history == [ChatMessage("user", "hi")]
    assert recorder.calls[-1] == ("turns_removed", 1)
    with pytest.raises(ConversationError, match="no reply"):
        chat.take_back_reply()
    record = chat.start_reply()
    assert record.reply_id == 2  # ids are never reused


def test_edit_last_takes_back_the_prompt_and_its_reply() -> None:
    chat, recorder = conversation()
    answered(chat, "first")
    answered(chat, "second")
    text, reply = chat.edit_last()
    assert text == "second" and reply is not None and reply.reply_id == 2
    assert [m.content for m in chat.history] == ["first", "Hello!"]
    assert recorder.calls[-1] == ("turns_removed", 2)
    chat.add_prompt("unanswered")
    text, reply = chat.edit_last()
    assert text == "unanswered" and reply is None
    chat.clear()
    with pytest.raises(ConversationError):
        chat.edit_last()


def test_branch_keeps_the_old_reply_as_a_sibling_and_continues_from_the_pick() -> None:
    chat, recorder = conversation()
    first = answered(chat)
    original = chat.records[first]
    picked = HELLO[1].candidates[1].token_id
    branch, siblings = chat.branch(first, 1, picked)
    assert chat.active is branch and branch.fixed_tokens == 2
    assert [event.text for event in branch.events] == ["Hel", " Hi"]
    assert chat.continue_from(branch) == (HELLO[0].token_id, picked)
    assert chat.messages()[-1] == ChatMessage("user", "hi")  # the old reply is not sent
    assert siblings.records == [original, branch] and siblings.label(branch.reply_id) == "branch 2/2"
    assert chat.record_of(first) is original and first not in chat.records
    assert recorder.names()[-2:] == ["turns_removed", "reply_started"]
    # The engine generates only what follows the fixed tokens; the whole reply is recorded and saved.
    rest = tokens(" there", start=2)
    finished = chat.finish_reply(branch.reply_id, done_of((*branch.events, *rest)), rest)
    assert [event.text for event in finished.tokens] == ["Hel", " Hi", " there"]
    assert branch.streamed_text == "Hel Hi there"
    assert recorder.calls[-1] == ("reply_finished", (branch.reply_id, 3, [first, branch.reply_id]))


def test_only_the_last_reply_branches_until_the_later_turns_are_removed() -> None:
    chat, recorder = conversation()
    first = answered(chat, "one")
    answered(chat, "two")
    picked = HELLO[0].candidates[1].token_id
    with pytest.raises(ConversationError, match="last reply"):
        chat.branch(first, 0, picked)
    removed = chat.truncate_after(first)
    assert [type(turn) for turn in removed] == [UserTurn, ReplyTurn]
    assert recorder.calls[-1] == ("turns_removed", 2)
    branch, _ = chat.branch(first, 0, picked)
    assert [m.content for m in chat.history] == ["one"] and chat.active is branch


def test_truncating_forgets_branches_only_the_removed_turns_had() -> None:
    chat, _ = conversation()
    first = answered(chat, "one")
    branch, _ = chat.branch(first, 0, HELLO[0].candidates[1].token_id)
    chat.finish_reply(branch.reply_id, done_of(branch.events), ())
    answered(chat, "two")
    assert chat.branches.sets
    chat.take_back_reply()
    chat.truncate_after(branch.reply_id)  # nothing after the branch but the prompt "two"
    assert chat.branches.set_of(branch.reply_id) is not None  # the branch is still shown
    chat.clear()
    assert not chat.branches.sets


def test_switch_branch_shows_the_sibling_and_tells_the_store() -> None:
    chat, recorder = conversation()
    first = answered(chat)
    branch, _ = chat.branch(first, 1, HELLO[1].candidates[1].token_id)
    chat.finish_reply(branch.reply_id, done_of(branch.events), ())
    switched = chat.switch_branch(1)
    assert switched is not None
    target, siblings = switched
    assert target.reply_id == first and chat.last_reply is target and siblings.active == 0
    assert chat.history[-1] == ChatMessage("assistant", "Hello!")
    assert recorder.calls[-1] == ("branch_shown", (first, 1, 0))
    again = chat.switch_branch(-1)
    assert again is not None and again[0] is branch


def test_switch_branch_without_branches_changes_nothing() -> None:
    chat, recorder = conversation()
    answered(chat)
    before = list(recorder.calls)
    assert chat.switch_branch(1) is None and recorder.calls == before


def test_parameters_get_versions_and_the_store_hears_of_user_changes_only() -> None:
    chat, recorder = conversation()
    hot = SamplingParams(temperature=1.5)
    version = chat.set_params(hot)
    assert version == 1 and chat.params_by_version[1] == hot and chat.live.params == hot
    assert recorder.calls[-1] == ("params_changed", 1.5)
    calls = len(recorder.calls)
    chat.set_params(SamplingParams(temperature=0.2), announce=False)
    assert len(recorder.calls) == calls and chat.live.version == 2
    chat.add_prompt("hi")
    record = chat.start_reply()
    assert record.params_by_version is chat.params_by_version  # changes mid-reply can be described
    assert recorder.calls[-1:] == [("reply_started", (record.reply_id, 2))]


def test_restore_puts_a_stored_chat_back_without_telling_the_store() -> None:
    chat, recorder = conversation()
    answered(chat)
    chat.clear()
    calls = len(recorder.calls)
    kept = chat.restored_reply(HELLO, done_of(HELLO))
    other = chat.restored_reply(HELLO[:1], done_of(HELLO[:1]))
    chat.restore(
        [SystemTurn("Stored system."), UserTurn("hi"), ReplyTurn(kept)],
        [([kept, other], 0, {other.reply_id: 0})],
        SamplingParams(temperature=0.3),
    )
    assert len(recorder.calls) == calls
    assert kept.reply_id == 2 and other.reply_id == 3  # fresh ids, after the earlier chat's
    assert chat.history[0] == ChatMessage("system", "Stored system.")
    assert chat.branches.set_of(other.reply_id) is chat.branches.set_of(kept.reply_id)
    assert chat.live.params.temperature == 0.3
    with pytest.raises(ConversationError):
        chat.restore([UserTurn("twice")])


def test_finished_replies_from_elsewhere_keep_the_prompts_old_reply_and_its_branches() -> None:
    """A compare's columns kept on a prompt that had a reply (with a branch of its own): the old
    reply and its branch stay first among the siblings, the kept column is shown, the store is told."""
    chat, recorder = conversation()
    first = answered(chat)
    original = chat.records[first]
    branch, _ = chat.branch(first, 1, HELLO[1].candidates[1].token_id)
    chat.finish_reply(branch.reply_id, done_of(branch.events), ())
    previous = chat.take_back_reply()
    assert previous is branch
    columns = [(done_of(tokens(" one")), tokens(" one")), (done_of(tokens(" two")), tokens(" two"))]
    shown, siblings = chat.add_finished_replies(columns, 1, previous=previous)
    assert siblings is not None and siblings.active == 3
    assert siblings.records[:2] == [original, branch] and siblings.records[3] is shown
    assert [r.streamed_text for r in siblings.records[2:]] == [" one", " two"]
    assert chat.last_reply is shown and chat.history[-1].content == " two"
    ids = [r.reply_id for r in siblings.records]
    assert recorder.calls[-1] == ("reply_finished", (shown.reply_id, 1, ids))
    # without a reply before, the columns alone are the siblings (as before)
    chat.take_back_reply()
    alone, only = chat.add_finished_replies(columns, 0)
    assert only is not None and [r.streamed_text for r in only.records] == [" one", " two"]
    assert only.active == 0 and only.records[0] is alone
