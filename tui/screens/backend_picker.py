"""Choose where the model runs: in this process, on a llama-server, or on an OpenAI-compatible server.

Reachable with F12 and from the command palette. Three choices (local / llama-server / openai), the
server's URL and, for a server, the model name to ask for (empty: the one it serves, or the first
it lists). The API key is never typed or shown here: the note says where it is read from
(``$TOKENDIAL_API_KEY`` or ``api_key_file``) and whether one was found. The screen is dismissed
with a :class:`BackendChoice`, or None on Esc; the app connects to it the way it loads a model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from tui.core.text import one_line

BACKENDS: tuple[tuple[str, str], ...] = (
    ("local", "local: the model file, in this process"),
    ("llama-server", "llama-server: llama.cpp's server (full token detail)"),
    ("openai", "openai: any OpenAI-compatible server (vLLM, Ollama, ...)"),
)
URL_PATTERN = re.compile(r"^https?://[^\s/]+(/\S*)?$")
"""The ``server_url`` setting's own rule (settings/config.py)."""


@dataclass(frozen=True)
class BackendChoice:
    """What the user picked: the backend, the server's URL, the model name (None: the server's)."""

    backend: str
    url: str
    model: str | None = None


def check_choice(backend: str, url: str, model: str) -> BackendChoice | str:
    """The choice, or what is wrong with it (one line for the user)."""
    url = url.strip()
    if backend != "local" and not URL_PATTERN.match(url):
        return f"Not a server URL: {one_line(url, 80)!r} (http://host:port, an openai URL may end in /v1)."
    name = model.strip()
    if any(not c.isprintable() for c in name):
        return "The model name has control characters."
    return BackendChoice(backend, url, name or None)


class BackendPickerScreen(ModalScreen[BackendChoice | None]):
    """Pick the backend, server URL and model name; dismissed with the choice, or None on Esc."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="backend.cancel", tooltip="Keep the current backend"),
    ]

    def __init__(self, current: BackendChoice, *, key_note: str) -> None:
        super().__init__(id="backend-picker")
        self.current = current
        self.key_note = key_note

    def compose(self) -> ComposeResult:
        """The three backends, the URL and model name, where the API key comes from, two buttons."""
        with Vertical(classes="dialog"):
            yield Label("Where the model runs", classes="dialog-title")
            with RadioSet(id="backend-kind"):
                for kind, label in BACKENDS:
                    yield RadioButton(label, value=kind == self.current.backend, id=f"backend-{kind}")
            yield Label("Server URL")
            yield Input(self.current.url, placeholder="http://127.0.0.1:8080", id="backend-url")
            yield Label("Model name (empty: the server's own)")
            yield Input(self.current.model or "", placeholder="(the server's)", id="backend-model")
            yield Static(Text(self.key_note), id="backend-key-note", classes="dialog-keys")
            yield Static("", id="backend-problem", classes="dialog-keys")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Connect", variant="primary", id="backend-connect")
                yield Button("Cancel (Esc)", id="backend-cancel")

    def on_mount(self) -> None:
        """Start on the backend list."""
        self.query_one(RadioSet).focus()

    @property
    def backend(self) -> str:
        """The backend selected now."""
        pressed = self.query_one(RadioSet).pressed_button
        return (pressed.id or "backend-local").removeprefix("backend-") if pressed else "local"

    def _choose(self) -> None:
        url = self.query_one("#backend-url", Input).value
        model = self.query_one("#backend-model", Input).value
        checked = check_choice(self.backend, url, model)
        if isinstance(checked, str):
            self.query_one("#backend-problem", Static).update(Text(checked, style="bold red"))
            return
        self.dismiss(checked)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._choose()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "backend-connect":
            self._choose()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        """Close without changing anything."""
        self.dismiss(None)
