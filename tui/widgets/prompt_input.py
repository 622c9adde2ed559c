"""The prompt box: a TextArea where Enter sends and ctrl+j / shift+enter / alt+enter insert a new line."""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.strip import Strip
from textual.widgets import TextArea
from textual.widgets.text_area import EditResult

from tui.core.text import has_control, one_cell

NEWLINE_KEYS = frozenset({"ctrl+j", "shift+enter", "alt+enter"})
SOFT_WRAP_LIMIT = 50_000
"""A paste or text longer than this turns soft wrapping off (wrapping a megabyte takes seconds);
it comes back on when the box is cleared or gets a short text."""


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

    async def _on_paste(self, event: events.Paste) -> None:
        # Runs before TextArea's own _on_paste (Textual calls the handler of every class in the MRO).
        if len(event.text) > SOFT_WRAP_LIMIT:
            self.soft_wrap = False

    def load_text(self, text: str) -> None:
        """Replace the text (soft wrapping only for texts up to SOFT_WRAP_LIMIT characters)."""
        self.soft_wrap = len(text) <= SOFT_WRAP_LIMIT
        super().load_text(text)

    def clear(self) -> EditResult:
        """Empty the box (and wrap lines again)."""
        result = super().clear()
        self.soft_wrap = True
        return result

    def render_line(self, y: int) -> Strip:
        """A line of the box, with control characters (a pasted escape sequence) drawn as visible
        stand-ins: the text keeps them, the terminal never receives them."""
        strip = super().render_line(y)
        if not any(has_control(segment.text) for segment in strip):
            return strip
        return Strip([Segment(one_cell(text), style, control) for text, style, control in strip])

    def action_newline(self) -> None:
        """Insert a line break at the cursor."""
        self.insert("\n")

    def action_submit(self) -> None:
        """Send the text (blank prompts are ignored)."""
        # The box keeps lines and rejoins them with the first line break it saw (maybe \r, or
        # \r\n; a form feed also breaks a line): the prompt sent always uses \n.
        text = "\n".join(self.document.lines)
        if text.strip():
            self.post_message(self.Submitted(self, text))
