"""Chat templates: the GGUF's own, an override, the ChatML fallback, the sandbox, clear errors."""

from __future__ import annotations

import pytest

from tui.engine.chat_format import (
    CHATML_TEMPLATE,
    ChatFormatter,
    ChatTemplateError,
    with_system_prompt,
)
from tui.engine.events import ChatMessage

SMOL_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nDefault system<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
NO_SYSTEM_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}[assistant] "
)
CHAT = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hi")]


def formatter(template: str | None, override: str | None = None) -> ChatFormatter:
    """A Jinja formatter (these tests never name a built-in template)."""
    chosen = ChatFormatter.for_model(template, override, bos_token="<s>", eos_token="</s>")
    assert isinstance(chosen, ChatFormatter)
    return chosen


def test_gguf_template_renders_with_generation_prompt() -> None:
    text = formatter(SMOL_TEMPLATE).render(CHAT)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_override_wins_over_the_gguf_template() -> None:
    chat_formatter = formatter(SMOL_TEMPLATE, override="{% for m in messages %}{{ m.content }}|{% endfor %}")
    assert chat_formatter.source == "override"
    assert chat_formatter.render(CHAT) == "Be brief.|Hi|"


def test_no_template_falls_back_to_chatml() -> None:
    chat_formatter = formatter(None)
    assert chat_formatter.source == "chatml-fallback" and chat_formatter.template_text == CHATML_TEMPLATE
    assert chat_formatter.render([ChatMessage("user", "Hi")]) == (
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_system_merged_when_the_template_refuses_it() -> None:
    text = formatter(NO_SYSTEM_TEMPLATE).render(CHAT)
    assert text == "<s>[user] Be brief.\n\nHi\n[assistant] "


def test_template_refusal_is_a_clear_error() -> None:
    with pytest.raises(ChatTemplateError, match="refused the conversation: System role not supported"):
        formatter(NO_SYSTEM_TEMPLATE).render([ChatMessage("system", "x")])


def test_broken_template_is_a_clear_error() -> None:
    with pytest.raises(ChatTemplateError, match="does not compile"):
        formatter("{% for m in messages %}")


def test_sandbox_blocks_python_internals() -> None:
    evil = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(ChatTemplateError, match="failed to render"):
        formatter(evil).render(CHAT)


def test_tojson_keeps_non_ascii() -> None:
    assert formatter("{{ messages[0].content | tojson }}").render([ChatMessage("user", "café 🎉")]) == (
        '"café 🎉"'
    )


def test_system_prompt_added_only_when_missing() -> None:
    user_only = [ChatMessage("user", "Hi")]
    assert with_system_prompt(user_only, "S")[0] == ChatMessage("system", "S")
    assert with_system_prompt(CHAT, "S") == CHAT
    assert with_system_prompt(user_only, None) == user_only
