"""The prompt box: a TextArea where Enter sends and ctrl+j / shift+enter / alt+enter insert a new line."""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import TextArea

NEWLINE_KEYS = frozenset({"ctrl+j", "shift+enter", "alt+enter"})


class PromptInput(TextArea):
    """Multi-line prompt; long pastes are fine (it is a TextArea)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "submit", "Send", show=False, id="prompt.send", tooltip="Send the prompt"),
        Binding("ctrl+j", "newline", "New line", show=False, id="prompt.newline",
                tooltip="Insert a line break (also shift+enter or alt+enter where the terminal sends them)"),
    ]  # fmt: skip

    class Submitted(Message):
        """The user sent the prompt."""

        def __init__(self, prompt: PromptInput, text: str) -> None:
            super().__init__()
            self.prompt = prompt
            self.text = text

        @property
        def control(self) -> PromptInput:
            """The prompt box."""
            return self.prompt

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            compact=True,
            placeholder="Ask something…  (Enter sends, ctrl+j new line)",
        )

    async def _on_key(self, event: events.Key) -> None:
        # Enter is handled here, in key order, not by a priority binding: a priority binding
        # runs before the keys typed just ahead of it have reached the text area.
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.action_submit()
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.action_newline()
            return
        await super()._on_key(event)

    def action_newline(self) -> None:
        """Insert a line break at the cursor."""
        self.insert("\n")

    def action_submit(self) -> None:
        """Send the text (blank prompts are ignored)."""
        if self.text.strip():
            self.post_message(self.Submitted(self, self.text))
