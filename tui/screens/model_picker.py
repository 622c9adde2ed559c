"""Pick another model: the GGUF files in the models folder, or a path typed in.

Reachable with F2 and from the command palette, and offered when a model fails to load, so a
bad ``model_path`` never leaves the user stuck. File names are shown as plain ``Text`` (a file
called ``[@click=app.quit].gguf`` is just a name). The screen is dismissed with the chosen path,
or None on Esc; the app checks and loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tui.widgets.safe_text import clean, one_line

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


def _size(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError:
        return "?"
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


def model_option(path: Path, folder: Path, current: Path | None) -> Option:
    """One file as a list row: its name under the folder, its size, and a mark on the current model."""
    try:
        name = str(path.relative_to(folder))
    except ValueError:
        name = str(path)
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(one_line(name, 90), style="bold" if path == current else "")
    text.append(f"  {_size(path)}", style="dim")
    if path == current:
        text.append("  (current)", style="italic")
    return Option(text)


class ModelPickerScreen(ModalScreen[Path | None]):
    """Choose a GGUF file from the models folder or type a path; dismissed with it, or None on Esc."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="model_picker.cancel", tooltip="Keep the current model"),
    ]

    def __init__(self, models_dir: Path, current: Path | None = None) -> None:
        super().__init__(id="model-picker")
        self.models = find_gguf_files(models_dir)
        self.current = current

    def compose(self) -> ComposeResult:
        """The title, the files found, a path input and the keys."""
        with Vertical(classes="dialog"):
            yield Label("Load another model", classes="dialog-title")
            options = [model_option(path, self.models.folder, self.current) for path in self.models.files]
            yield OptionList(*options, id="model-files")
            if self.models.problem:
                yield Static(Text(one_line(self.models.problem, 200), style="italic"), id="model-files-note")
            yield Input(
                clean(str(self.current)) if self.current else "",
                placeholder="or type the path of a .gguf file and press Enter",
                id="model-path",
            )
            yield Static("enter: load · tab: list / path · esc: cancel", classes="dialog-keys")

    def on_mount(self) -> None:
        """Focus the list if it has files, else the path input."""
        if self.models.files:
            self.query_one(OptionList).focus()
        else:
            self.query_one(Input).focus()

    @on(OptionList.OptionSelected, "#model-files")
    def _file_chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.models.files[event.option_index])

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
