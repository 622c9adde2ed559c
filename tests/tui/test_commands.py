"""One command table makes the bindings, the palette and the help's key list; the keymap remaps keys."""

from __future__ import annotations

from pathlib import Path

from textual.binding import Binding
from textual.widgets import Markdown

from tests.fakes import FakeEngine
from tests.tui.tui_app_helpers import SIZE, make_settings, reply_done, send, wait_for, wait_ready
from tui.app import TokendialApp
from tui.commands import COMMANDS, help_keys_markdown, key_text, keymap_reference, unknown_keymap_ids
from tui.engine.protocol import ChatEngine, LoadConfig
from tui.screens.help import HelpScreen
from tui.widgets.prompt_input import PromptInput

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def app_with_keymap(engine: FakeEngine, tmp_path: Path, keymap: dict[str, str]) -> TokendialApp:
    def factory(config: LoadConfig) -> ChatEngine:
        return engine

    settings = make_settings(tmp_path).model_copy(update={"keymap": keymap})
    return TokendialApp(settings, engine_factory=factory, config_path=tmp_path / "config.toml")


def test_readme_key_reference_matches_the_table() -> None:
    assert keymap_reference() in README, "README's key table is stale: paste tui.commands.keymap_reference()"


def test_the_bindings_are_the_tables_commands_with_a_key() -> None:
    bindings = [b for b in TokendialApp.BINDINGS if isinstance(b, Binding)]
    assert [b.id for b in bindings] == [c.id for c in COMMANDS if c.key is not None]
    assert all(b.tooltip for b in bindings)
    ids = [c.id for c in COMMANDS]
    assert len(ids) == len(set(ids))


def test_no_two_commands_share_a_key_nor_shadow_the_prompt_box() -> None:
    """A key has one meaning: no two commands share a default key, and none is a key the prompt box
    (focused most of the time, a TextArea) binds itself, which would swallow it before the app sees it."""
    keys = [k.strip() for c in COMMANDS if c.key is not None for k in c.key.split(",")]
    assert sorted(k for k in set(keys) if keys.count(k) > 1) == []
    prompt_map = PromptInput._merged_bindings  # the class's bindings with TextArea's, as Textual merges them
    assert prompt_map is not None
    prompt_keys = set(prompt_map.key_to_bindings)
    assert sorted(set(keys) & prompt_keys - {"escape"}) == []


def test_key_text_reads_like_the_keyboard() -> None:
    assert key_text("escape") == "Esc"
    assert key_text("left_square_bracket") == "["
    assert key_text("ctrl+r,f5") == "ctrl+r / f5"


def test_help_key_list_has_every_key_of_the_table() -> None:
    keys = {c.id: c.key for c in COMMANDS if c.key is not None}
    table = help_keys_markdown(keys)
    for command in COMMANDS:
        if command.key is not None and command.help_line is not None:
            assert f"| {key_text(command.key)} | {command.help_line} |" in table
    assert "| ctrl+p |" in table and "| Enter / ctrl+j |" in table


def test_unknown_ids_are_named() -> None:
    assert unknown_keymap_ids({"app.regenerate": "f5", "app.regenrate": "x"}) == ["app.regenrate"]
    assert unknown_keymap_ids({"prompt.send": "f5nter"}) == []  # widget bindings count too


async def test_a_remapped_key_runs_its_command_and_shows_everywhere(tmp_path: Path) -> None:
    engine = FakeEngine()
    app = app_with_keymap(engine, tmp_path, {"app.regenerate": "f5"})
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hi")
        await reply_done(pilot)
        await pilot.press("f5")  # the new key regenerates
        await wait_for(pilot, lambda: len(engine.calls) == 2, "the regenerated reply")
        await reply_done(pilot)
        assert len(app.history) == 2
        await pilot.press("ctrl+r")  # the old key no longer does
        await pilot.pause()
        assert len(engine.calls) == 2
        palette = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert palette["Regenerate"].endswith("(f5)")
        assert palette["New chat"].endswith("(ctrl+n)")
        assert palette["Reset parameters"] == "Back to the default sampling parameters"  # no key
        assert "Chats: start a fresh database" not in palette  # only for a damaged database
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        source = app.screen.query_one(Markdown).source
        assert "| f5 | regenerate the last reply" in source
        assert "| ctrl+r |" not in source


async def test_an_unknown_keymap_id_is_reported(tmp_path: Path) -> None:
    app = app_with_keymap(FakeEngine(), tmp_path, {"app.regenrate": "f5"})
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        messages = [str(n.message) for n in app._notifications]
        assert any("app.regenrate" in m and "ignored" in m for m in messages)
