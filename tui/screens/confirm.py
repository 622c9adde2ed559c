"""A yes/no question in a dialog: dismissed with True only on an explicit yes (the default is no)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static
from textual.widgets.button import ButtonVariant


class ConfirmScreen(ModalScreen[bool]):
    """Ask before doing something that cannot be undone; **y** / **n** (or Esc) answer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes_any", tooltip="Go ahead"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no_any", tooltip="Leave everything as it is"),
    ]

    def __init__(
        self,
        question: str,
        detail: str,
        yes: str,
        no: str,
        *,
        screen_id: str,
        yes_variant: ButtonVariant = "warning",
    ) -> None:
        super().__init__(id=screen_id, classes="text-prompt")
        self.question = question
        self.detail = detail
        self.yes = yes
        self.no = no
        self.yes_variant = yes_variant

    def compose(self) -> ComposeResult:
        """The question, what it does, and two buttons (no is focused)."""
        with Vertical(classes="dialog"):
            yield Label(Text(self.question), classes="dialog-title")
            yield Static(Text(self.detail))
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant=self.yes_variant, id="confirm-yes")
                yield Button(f"{self.no} (n)", variant="primary", id="confirm-no")

    def on_mount(self) -> None:
        """No is the default."""
        self.query_one("#confirm-no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, yes: bool) -> None:
        """Close with the answer."""
        self.dismiss(yes)
