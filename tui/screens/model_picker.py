"""Pick another model: the model library (every GGUF found, with its card), or a path typed in.

Reachable with F2 and from the command palette, and offered when a model fails to load, so a
bad ``model_path`` never leaves the user stuck. The list is the library (models folder, extra
folders, hub cache, llama.cpp, LM Studio, Ollama); the highlighted model's card is shown beside
it, read from the GGUF header. Unusable entries are listed with the reason. File names are
shown as plain ``Text`` (a file called ``[@click=app.quit].gguf`` is just a name). The screen is
dismissed with the chosen path, or None on Esc; the app checks and loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tui.core.text import clean, one_line
from tui.library.card import card_facts, card_line
from tui.library.scan import Library, LibraryEntry, Location, default_locations, scan_library, shared_cards

LIST_LIMIT = 200
"""At most this many files are listed."""


@dataclass(frozen=True)
class ModelFiles:
    """The GGUF files found in a folder, and why none were, if so."""

    folder: Path
    files: tuple[Path, ...]
    problem: str | None = None


def find_gguf_files(folder: Path) -> ModelFiles:
    """The ``*.gguf`` files in ``folder`` and its direct subfolders, sorted; never raises."""
    try:
        if not folder.is_dir():
            return ModelFiles(folder, (), f"{folder} is not a folder (models_dir).")
        found = [*folder.glob("*.gguf"), *folder.glob("*/*.gguf")]
    except OSError as exc:
        return ModelFiles(folder, (), f"cannot list {folder}: {exc.strerror or exc}")
    files = sorted((path for path in found if path.is_file()), key=lambda path: str(path).lower())
    problem = None if files else f"no .gguf files in {folder}"
    return ModelFiles(folder, tuple(files[:LIST_LIMIT]), problem)


def entry_option(entry: LibraryEntry, current: Path | None, n_ctx: int) -> Option:
    """One library entry as a list row: its name, a mark on the current model, its card in a line
    (or why it can't be used)."""
    is_current = current is not None and entry.path == current
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(one_line(entry.label, 90), style="bold" if is_current else "")
    if is_current:
        text.append("  (current)", style="italic")
    text.append(f"  {entry.source}", style="dim")
    text.append("\n  ")
    if entry.card is not None and entry.problem is None:
        text.append(one_line(card_line(entry.card, n_ctx), 120), style="dim")
    else:
        text.append(one_line(f"unusable: {entry.problem or '?'}", 120), style="italic")
    return Option(text, disabled=False)


def card_text(entry: LibraryEntry | None, n_ctx: int) -> Text:
    """The highlighted entry's card (every fact on its own line)."""
    text = Text()
    if entry is None:
        return text
    text.append(one_line(entry.label, 200) + "\n", style="bold")
    text.append(one_line(f"{entry.source}: {entry.path}", 300) + "\n", style="dim")
    if entry.card is None or entry.problem:
        text.append(one_line(f"Can't be used: {entry.problem or '?'}", 300), style="italic")
        return text
    for name, value in card_facts(entry.card, n_ctx):
        style = "bold" if name == "chat template" and not entry.card.has_chat_template else ""
        text.append(f"{name:>16}  ", style="dim")
        text.append(one_line(value, 200) + "\n", style=style)
    return text


class ModelPickerScreen(ModalScreen[Path | None]):
    """Choose a model from the library or type a path; dismissed with it, or None on Esc."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="model_picker.cancel", tooltip="Keep the current model"),
    ]

    def __init__(
        self,
        models_dir: Path,
        current: Path | None = None,
        *,
        library_dirs: Sequence[Path] = (),
        n_ctx: int = 2048,
        locations: Sequence[Location] | None = None,
        data_dir: Path | None = None,
    ) -> None:
        super().__init__(id="model-picker")
        self.models_dir = models_dir
        self.current = current
        self.n_ctx = n_ctx
        where = list(locations) if locations is not None else default_locations(models_dir, library_dirs)
        self.library: Library = scan_library(where, shared_cards(data_dir))
        self.entries = self.library.entries[:LIST_LIMIT]

    def compose(self) -> ComposeResult:
        """The title, the library beside the highlighted model's card, a path input and the keys."""
        with Vertical(classes="dialog"):
            yield Label("Load another model", classes="dialog-title")
            with Horizontal(id="model-library"):
                options = [entry_option(entry, self.current, self.n_ctx) for entry in self.entries]
                yield OptionList(*options, id="model-files")
                yield Static(
                    card_text(self.entries[0] if self.entries else None, self.n_ctx), id="model-card"
                )
            note = self._note()
            if note:
                yield Static(Text(note, style="italic"), id="model-files-note")
            yield Input(
                clean(str(self.current)) if self.current else "",
                placeholder="or type the path of a .gguf file and press Enter",
                id="model-path",
            )
            yield Static("enter: load · tab: list / path · esc: cancel", classes="dialog-keys")

    def _note(self) -> str:
        lines = [one_line(note, 200) for note in self.library.notes[:4]]
        if not self.entries:
            lines.insert(
                0, f"no .gguf files in {one_line(str(self.models_dir), 150)} or the other model stores"
            )
        if len(self.library.entries) > LIST_LIMIT:
            lines.append(f"showing {LIST_LIMIT} of {len(self.library.entries)} models")
        return "\n".join(lines)

    def on_mount(self) -> None:
        """Focus the list if it has files, else the path input."""
        if self.entries:
            self.query_one(OptionList).focus()
        else:
            self.query_one(Input).focus()

    @on(OptionList.OptionHighlighted, "#model-files")
    def _file_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if 0 <= event.option_index < len(self.entries):
            entry = self.entries[event.option_index]
            self.query_one("#model-card", Static).update(card_text(entry, self.n_ctx))

    @on(OptionList.OptionSelected, "#model-files")
    def _file_chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        entry = self.entries[event.option_index]
        if entry.card is not None and not entry.card.is_language_model:
            self.notify(f"{one_line(entry.label, 80)}: {entry.problem}", severity="warning")
            return
        self.dismiss(entry.path)

    @on(Input.Submitted, "#model-path")
    def _path_typed(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        if not value:
            self.notify("Type the path of a .gguf file, or pick one from the list.", severity="warning")
            return
        self.dismiss(Path(value).expanduser())

    def action_cancel(self) -> None:
        """Close without changing the model."""
        self.dismiss(None)
