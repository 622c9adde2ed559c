"""Export to Markdown and JSON, and import of the JSON back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from settings.sampling import SamplingMode, SamplingParams
from tui.engine.events import ReplyDone, StopKind, StopReason, TokenEvent
from tui.store import ChatStore, ImportFormatError, ModelRef, StoredChat
from tui.store.records import FingerprintKind


def _without_ids(chat: StoredChat) -> dict[str, Any]:
    data = chat.model_dump()
    del data["id"]
    for message in data["messages"]:
        del message["id"]
    return data


@pytest.fixture
def full_chat(
    store: ChatStore, make_done: Callable[..., ReplyDone], make_events: Callable[..., list[TokenEvent]]
) -> int:
    """A chat with a system prompt, two replies (one with mid-reply param change), and an interrupted one."""
    model = ModelRef(
        path="/models/SmolLM2-135M-Instruct.Q4_1.gguf",
        fingerprint="ab" * 32,
        fingerprint_kind=FingerprintKind.SHA256,
        size=92_000_000,
        mtime=1_700_000_000.5,
    )
    chat_id = store.create_chat()
    store.add_message(chat_id, "system", "You are terse.")
    store.add_user_message(chat_id, "Name a colour.\nJust one.")
    v0 = SamplingParams(temperature=0.7, seed=42, stop=("\n\n",))
    v1 = SamplingParams(temperature=1.6, seed=42, stop=("\n\n",))
    reply = store.begin_assistant_message(chat_id, v0, model)
    events = make_events(["Bl", "ue", "\n", ""], versions=[0, 0, 1, 1])
    store.finish_assistant_message(
        reply,
        make_done("Blue\n", params={0: v0, 1: v1}, n_tokens=4, seed=42),
        events,
    )
    store.add_user_message(chat_id, "Another, in **bold**")
    greedy = SamplingParams(mode=SamplingMode.GREEDY, max_new_tokens=2)
    reply = store.begin_assistant_message(chat_id, greedy, model)
    stop = StopReason(StopKind.MAX_TOKENS, limit=2, generated=2)
    store.finish_assistant_message(reply, make_done("**Red", stop=stop, params={0: greedy}, n_tokens=2))
    store.add_user_message(chat_id, "And a third?")
    reply = store.begin_assistant_message(chat_id, greedy, model)
    store.update_assistant_text(reply, "Gre", token_count=1)
    return chat_id


def test_json_round_trip_equals_the_original(store: ChatStore, full_chat: int, tmp_path: Path) -> None:
    exported = store.export_json(full_chat)
    # through a file, as a user would
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(exported, indent=2), encoding="utf-8")
    imported_id = store.import_json(path.read_text(encoding="utf-8"))
    assert imported_id != full_chat

    original = store.load_chat(full_chat)
    imported = store.load_chat(imported_id)
    assert _without_ids(imported) == _without_ids(original)
    # the token events (with candidates) came along exactly
    for a, b in zip(original.messages, imported.messages, strict=True):
        assert store.load_events(a.id) == store.load_events(b.id)
    assert store.load_events(original.messages[2].id) is not None
    # and exporting the import gives the same document
    again = store.export_json(imported_id)
    assert {**again, "exported_at": None} == {**exported, "exported_at": None}


def test_json_round_trip_into_another_database(full_chat: int, store: ChatStore, tmp_path: Path) -> None:
    with ChatStore(tmp_path / "other.sqlite3") as other:
        new_id = other.import_json(store.export_json(full_chat))
        assert _without_ids(other.load_chat(new_id)) == _without_ids(store.load_chat(full_chat))


def test_json_export_has_the_documented_shape(store: ChatStore, full_chat: int) -> None:
    exported = store.export_json(full_chat)
    assert (exported["format"], exported["version"]) == ("tokendial.chat", 3)
    assert all(m["siblings"] == [] and m["sibling_ordinal"] == 0 for m in exported["messages"])
    reply = exported["messages"][2]
    assert reply["reply"]["params"]["1"]["temperature"] == 1.6
    assert reply["reply"]["stop"]["kind"] == "eos"
    assert reply["reply"]["model"]["fingerprint_kind"] == "sha256"
    assert reply["token_events"]["fields"][0] == "index"
    assert len(reply["token_events"]["rows"]) == 4
    assert exported["messages"][-1]["status"] == "interrupted"
    without = store.export_json(full_chat, include_events=False)
    assert all(m["token_events"] is None for m in without["messages"])


def test_markdown_export_is_readable_with_params_and_stop(store: ChatStore, full_chat: int) -> None:
    text = store.export_markdown(full_chat)
    assert text.startswith("# Name a colour.\n")
    assert "## You · " in text and "## Assistant · " in text and "## System · " in text
    assert "Name a colour.\nJust one." in text
    assert "> parameters changed during the reply:" in text
    assert "v1: T 1.6 · top-k 40" in text
    assert "stop '\\n\\n'" in text
    assert "> seed 42 · model SmolLM2-135M-Instruct.Q4_1.gguf" in text
    assert "stop: **end of sequence <|im_end|>** · 4 tokens" in text
    assert "> parameters: greedy · repeat 1.1/64 · max 2" in text
    assert "stop: **stopped at 2/2 tokens (max new tokens)** · 2 tokens" in text
    assert "**interrupted**" in text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "does not hold a tokendial chat export"),
        ({"format": "other"}, "not a tokendial chat export"),
        ({"format": "tokendial.chat", "version": 99}, "version 99"),
        (
            {"format": "tokendial.chat", "version": 1, "exported_at": "2026-01-01T00:00:00Z"},
            "invalid at chat",
        ),
    ],
)
def test_import_rejects_bad_data_with_a_clear_message(store: ChatStore, data: object, message: str) -> None:
    with pytest.raises(ImportFormatError, match=message):
        store.import_json(data)  # type: ignore[arg-type]
    assert store.list_chats() == []


def test_import_rejects_bad_nested_values(store: ChatStore, full_chat: int) -> None:
    exported = store.export_json(full_chat)
    exported["messages"][2]["reply"]["params"]["0"]["temperature"] = 99
    with pytest.raises(ImportFormatError, match=r"messages\.2\.reply\.params"):
        store.import_json(exported)
    exported = store.export_json(full_chat)
    exported["messages"][2]["token_events"]["rows"][0] = [1, 2]
    with pytest.raises(ImportFormatError, match="token event row"):
        store.import_json(exported)
    assert [c.id for c in store.list_chats()] == [full_chat]
