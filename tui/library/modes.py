"""Which mode the chat on screen is in (chat or text completion), and which a new chat starts in.

Textual-free, held by the app next to the conversation: a model without a chat template (a base
model, most likely) makes new chats start in completion mode; the user can switch a chat either
way; a chat reopened from the store comes back in its stored mode.
"""

from __future__ import annotations

from tui.engine.events import ModelInfo
from tui.library.advice import CHAT, COMPLETION, default_chat_mode, no_template_notice


class ChatModes:
    """The chat's mode and the loaded model's default."""

    def __init__(self) -> None:
        self.mode = CHAT
        self.default = CHAT
        self.chosen = False
        """The user (or the store) set this chat's mode: a model loaded later leaves it alone."""

    @property
    def raw(self) -> bool:
        """Replies are text completions (no chat template, no system prompt)."""
        return self.mode == COMPLETION

    def model_loaded(self, info: ModelInfo, *, chat_is_empty: bool) -> str | None:
        """Take the model's default mode (for an empty chat nobody set); the notice to show, if any."""
        self.default = default_chat_mode(info)
        if chat_is_empty and not self.chosen:
            self.mode = self.default
        return no_template_notice(info, for_app=True)

    def new_chat(self) -> None:
        """A new chat starts in the model's default mode."""
        self.mode = self.default
        self.chosen = False

    def restored(self, mode: str) -> None:
        """A stored chat was opened in ``mode``."""
        self.mode = COMPLETION if mode == COMPLETION else CHAT
        self.chosen = True

    def toggle(self) -> str:
        """Switch this chat to the other mode; returns the new one."""
        self.mode = CHAT if self.raw else COMPLETION
        self.chosen = True
        return self.mode

    @property
    def label(self) -> str:
        """For the status bar."""
        return "completion" if self.raw else "chat"
