"""What to tell the user about a model's chat template (the app's notice, ``generate``'s NOTE)."""

from __future__ import annotations

from tui.engine.events import ModelInfo


def needs_template_word(info: ModelInfo) -> bool:
    """True when the model has no template of its own and none was chosen (ChatML was guessed)."""
    if info.has_chat_template:
        return False
    return not info.chat_template_label or "guess" in info.chat_template_label


CHAT = "chat"
COMPLETION = "completion"


def default_chat_mode(info: ModelInfo) -> str:
    """The mode a new chat opens in: completion for a model without a chat template (a base model,
    most likely) unless the chat_template setting chose one, else chat."""
    return COMPLETION if needs_template_word(info) else CHAT


def no_template_notice(info: ModelInfo, *, for_app: bool) -> str | None:
    """One paragraph for a model without a chat template (None when it has one or one was set)."""
    if not needs_template_word(info):
        return None
    from tui.engine.chat_format import suggest_builtin_template

    suggested = suggest_builtin_template(info.architecture, info.n_vocab)
    if for_app:
        start = (
            f"{info.name} has no chat template (likely a base model): new chats open in completion mode, "
            "where the model continues your text."
        )
        family = (
            f" If it is a chat model, its architecture ({info.architecture}) points at the built-in "
            f'template "{suggested}": set chat_template = "{suggested}".'
            if suggested
            else " For chat, set chat_template to a built-in name (chatml, llama3, gemma, ...) or Jinja text."
        )
        return start + family
    advice = (
        f"if it is a chat model, --chat-template {suggested} likely fits ({info.architecture})"
        if suggested
        else "set --chat-template to a built-in name (chatml, llama3, gemma, ...) or Jinja text"
    )
    return (
        f"NOTE: {info.name} has no chat template: the prompt was wrapped in ChatML, a guess. "
        f"A base model continues text better with --raw; {advice}."
    )
