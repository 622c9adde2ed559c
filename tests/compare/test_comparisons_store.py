"""Comparisons saved with the chat (schema 6): a real SQLite file, exports, import, a schema-5 file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.compare.compare_records import COLUMN_PARAMS, columns, saved_conversation
from tui.core.comparison import ComparedColumn, Comparison
from tui.engine.events import StopKind
from tui.store import ChatStore, StoredComparison
from tui.store.export import params_line
from tui.store.schema import CURRENT_VERSION, MIGRATIONS

LABELS = ("greedy", "temperature 0.8", "temperature 1.5")
PROMPT = "What colour is the sky?"


def the_comparison(kept: int | None = 1) -> Comparison:
    return Comparison(
        PROMPT,
        tuple(ComparedColumn(label, done) for label, (done, _events) in zip(LABELS, columns(), strict=True)),
        kept=kept,
        parting="parted at token #2: ' is' (p 0.41) vs ' looks' (p 0.22)",
    )


def check_columns(saved: StoredComparison, kept: int | None = 1) -> None:
    assert saved.prompt == PROMPT and saved.kept == kept and saved.parting is not None
    assert [c.label for c in saved.columns] == list(LABELS)
    assert [c.text for c in saved.columns] == ["The sky is blue", "The sky looks grey", "Blue!"]
    assert [c.reply.params[0] for c in saved.columns] == list(COLUMN_PARAMS)
    assert [c.reply.stop.kind for c in saved.columns if c.reply.stop] == [
        StopKind.EOS,
        StopKind.MAX_TOKENS,
        StopKind.EOS,
    ]
    assert [c.reply.token_count for c in saved.columns] == [4, 4, 2]
    assert [c.reply.stop_label for c in saved.columns] == [
        c.reply.stop.label() for c in saved.columns if c.reply.stop
    ]


def test_a_kept_comparison_is_saved_exported_and_imported(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite3"
    chat, session = saved_conversation(path)
    chat.add_prompt(PROMPT)
    chat.add_finished_replies(columns(), 1)
    chat.record_comparison(the_comparison())
    chat_id = session.chat_id
    assert chat_id is not None
    session.store.close()

    with ChatStore(path) as store:  # reopened from the file
        [saved] = store.load_comparisons(chat_id)
        check_columns(saved)
        assert saved.after_messages == 2  # saved after the prompt and the kept reply
        data = store.export_json(chat_id)
        markdown = store.export_markdown(chat_id)
        # JSON: every column with its parameters and stop reason
        assert data["version"] == 3
        [exported] = data["comparisons"]
        assert exported["kept"] == 1 and exported["prompt"] == PROMPT
        assert [c["reply"]["stop"]["kind"] for c in exported["columns"]] == ["eos", "max_tokens", "eos"]
        assert exported["columns"][2]["reply"]["params"]["0"]["temperature"] == 1.5
        json.dumps(data)  # JSON-able as it is
        # Markdown: a section per comparison, each column's parameter line, stop reason and text
        assert "## Comparison 1" in markdown and "3 columns" in markdown
        assert "### Column 2: temperature 0.8 · **kept as the reply**" in markdown
        for params in COLUMN_PARAMS:
            assert params_line(params) in markdown
        for column in saved.columns:
            assert f"stop: **{column.reply.stop_label}** · {column.reply.token_count} tokens" in markdown
        assert "Blue!" in markdown
        # Import reads it back: a new chat with the same comparison
        new_id = store.import_json(json.dumps(data))
        [imported] = store.load_comparisons(new_id)
        check_columns(imported)
        assert imported == saved
        # A copy keeps it as well; deleting the chat deletes its comparisons
        copy_id = store.copy_chat(chat_id)
        assert store.load_comparisons(copy_id) == [saved]
        store.delete_chat(chat_id)
        assert store.load_comparisons(chat_id) == []
        assert store._db.execute("SELECT COUNT(*) FROM comparison_columns").fetchone()[0] == 6


def test_a_comparison_not_kept_is_saved_only_once_the_chat_exists(tmp_path: Path) -> None:
    chat, session = saved_conversation(tmp_path / "chats.sqlite3")
    chat.record_comparison(the_comparison(kept=None))  # nothing sent yet: no stored chat
    assert session.store.list_chats() == []
    chat.add_prompt("hello")
    chat.record_comparison(the_comparison(kept=None))
    assert session.chat_id is not None
    [saved] = session.store.load_comparisons(session.chat_id)
    check_columns(saved, kept=None)
    assert saved.after_messages == 1


def test_an_export_of_version_2_imports_without_comparisons(tmp_path: Path) -> None:
    with ChatStore(tmp_path / "chats.sqlite3") as store:
        chat_id = store.create_chat("old")
        store.add_user_message(chat_id, "hi")
        data = store.export_json(chat_id)
        data["version"] = 2
        del data["comparisons"]
        new_id = store.import_json(data)
        assert store.load_comparisons(new_id) == []
        assert [m.text for m in store.load_chat(new_id).messages] == ["hi"]


def test_a_bad_kept_column_in_an_import_is_named(tmp_path: Path) -> None:
    chat, session = saved_conversation(tmp_path / "chats.sqlite3")
    chat.add_prompt(PROMPT)
    chat.record_comparison(the_comparison())
    assert session.chat_id is not None
    data = session.store.export_json(session.chat_id)
    data["comparisons"][0]["kept"] = 7
    with pytest.raises(Exception, match="comparisons") as caught:
        session.store.import_json(data)
    assert "kept column 7" in str(caught.value)
    assert len(session.store.list_chats()) == 1  # nothing half-imported


def test_a_schema_5_file_migrates_and_keeps_its_chats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tui.store.schema as schema

    path = tmp_path / "chats.sqlite3"
    monkeypatch.setattr(schema, "MIGRATIONS", MIGRATIONS[:5])  # the tokendial before comparisons
    with ChatStore(path) as old:
        chat_id = old.create_chat("before compare")
        old.add_user_message(chat_id, "an old prompt")
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == 5
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "comparisons" not in tables
    conn.close()
    monkeypatch.undo()

    assert CURRENT_VERSION == 6
    chat, session = saved_conversation(path)
    store = session.store
    assert store._db.execute("SELECT version FROM schema_version").fetchone()[0] == 6
    assert [m.text for m in store.load_chat(chat_id).messages] == ["an old prompt"]
    assert store.load_comparisons(chat_id) == []
    restored = session.open_chat(chat_id)
    assert restored.title == "before compare"
    chat.add_prompt(PROMPT)  # the reopened old chat goes on and takes a comparison
    chat.record_comparison(the_comparison())
    assert session.chat_id == chat_id
    [saved] = store.load_comparisons(chat_id)
    check_columns(saved)
    assert saved.after_messages == 2
