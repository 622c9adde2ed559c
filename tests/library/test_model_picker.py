"""The F2 picker shows the library with cards (tested in a tiny host app with the real stylesheet)."""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.widgets import OptionList, Static

from tests.library.gguf_files import write_gguf
from tui.library.scan import SOURCE_HUB, SOURCE_MODELS, Location
from tui.screens.model_picker import ModelPickerScreen

TCSS = Path(__file__).resolve().parents[2] / "tui" / "app.tcss"


class Host(App[None]):
    CSS_PATH = TCSS

    def __init__(self, picker: ModelPickerScreen) -> None:
        super().__init__()
        self.picker = picker
        self.chosen: list[Path | None] = []

    def on_mount(self) -> None:
        self.push_screen(self.picker, self.chosen.append)


def _plain(widget: Static) -> str:
    return str(widget.render())


async def test_cards_beside_the_list_and_a_choice(tmp_path: Path) -> None:
    models = tmp_path / "models"
    chat = write_gguf(models / "Chat-Q4_K_M.gguf", n_vocab=100)
    write_gguf(models / "Base-Q8_0.gguf", template=None, file_type=7)
    (models / "broken.gguf").write_bytes(b"nope")
    (models / "loop").symlink_to(models)
    hub = tmp_path / "hub" / "models--o--r" / "snapshots" / "abc"
    write_gguf(hub / "r-Q5_K_M.gguf", file_type=17)
    locations = [Location(SOURCE_MODELS, models, explicit=True), Location(SOURCE_HUB, tmp_path / "hub")]
    picker = ModelPickerScreen(models, chat, n_ctx=4096, locations=locations)
    app = Host(picker)
    async with app.run_test(size=(150, 40)) as pilot:
        await pilot.pause()
        options = [str(option.prompt) for option in picker.query_one(OptionList).options]
        assert [line.split("  ")[0] for line in options] == [
            "Base-Q8_0.gguf",
            "broken.gguf",
            "Chat-Q4_K_M.gguf",
            "o/r/r-Q5_K_M.gguf",
        ]
        assert "NO template" in options[0] and "unusable: not a GGUF file" in options[1]
        assert "(current)" in options[2] and "hub cache" in options[3]
        card = picker.query_one("#model-card", Static)
        assert "NONE: completion mode" in _plain(card) and "at n_ctx 4,096" in _plain(card)
        note = _plain(picker.query_one("#model-files-note", Static))
        assert "symbolic link loop" in note
        await pilot.press("down", "down")
        await pilot.pause()
        assert "yes (its own)" in _plain(card) and "Q4_K_M" in _plain(card)
        await pilot.press("enter")
        await pilot.pause()
    assert app.chosen == [chat]


async def test_an_empty_library_says_where_it_looked(tmp_path: Path) -> None:
    locations = [Location(SOURCE_MODELS, tmp_path / "none", explicit=True)]
    picker = ModelPickerScreen(tmp_path / "none", None, locations=locations)
    app = Host(picker)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert "no .gguf files in" in _plain(picker.query_one("#model-files-note", Static))
        assert picker.query_one("#model-path").has_focus
