"""Chat formatting: the GGUF's own Jinja chat template (or an override), rendered in a sandbox.

Rendered like Hugging Face / llama-cpp-python do it (trim_blocks, lstrip_blocks, loop controls,
``raise_exception``, ``strftime_now``, a ``tojson`` that keeps non-ASCII), in Jinja2's
immutable sandbox: a template from a downloaded file can't reach Python internals (no ``__class__``,
``__globals__``...), can't change the messages (no ``append``), can't loop over ranges above
100,000; on top of that, ``*`` and ``**`` can't build huge values and the rendered prompt is
capped (:data:`MAX_TEMPLATE_OUTPUT` plus the messages' own length), so a hostile template can't
exhaust memory. (A template can still loop for a long time: rendering isn't interrupted.)
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import jinja2
import jinja2.ext
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tui.engine.events import ChatMessage, EngineError

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""Fallback for models without a chat template (ChatML)."""


MAX_TEMPLATE_OUTPUT = 1_000_000
"""Characters a template may add around the messages' own text."""
MAX_TEMPLATE_VALUE = 1_000_000
"""Largest string or list (characters or items) a template's ``*`` may build."""


RENDER_TIME_LIMIT_S = 10.0
"""A chat template renders in milliseconds; one still running after this is stopped (it would
keep the engine thread, and so the app's quit, waiting forever)."""


class ChatTemplateError(EngineError):
    """The chat template could not be compiled or rendered."""


class ChatTemplateTimeout(ChatTemplateError):
    """The chat template ran past the time limit."""


class _TemplateTimeout(BaseException):
    """Raised inside the rendering thread when the time limit is up (not an Exception: nothing
    on the way may swallow it)."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise _TemplateTimeout in this thread if the block is still running after ``seconds``.

    A watchdog thread sets an asynchronous exception in this thread (Python checks for it between
    bytecodes, so a template loop that calls nothing is stopped too). A lock makes sure it is never
    set after the block has ended, and a pending one is withdrawn.
    """
    target = threading.get_ident()
    lock = threading.Lock()
    ended = threading.Event()
    fired = False

    def watchdog() -> None:
        nonlocal fired
        if ended.wait(seconds):
            return
        with lock:
            if not ended.is_set():
                fired = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(target), ctypes.py_object(_TemplateTimeout)
                )

    thread = threading.Thread(target=watchdog, name="chat-template-watchdog", daemon=True)
    thread.start()
    try:
        yield
    finally:
        with lock:
            ended.set()
            if fired:  # not delivered yet (the block ended just in time): withdraw it
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), None)


class TemplateSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, with ``*`` and ``**`` kept from building huge values."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """``left * right`` or ``left ** right``, refused when the result would be huge."""
        if operator == "**":
            numbers = isinstance(left, int | float) and isinstance(right, int | float)
            if numbers and abs(right) > 64 and abs(left) > 1:
                raise SecurityError(f"the power {left!r} ** {right!r} is too large for a chat template")
            return left**right
        for seq, times in ((left, right), (right, left)):
            if (
                isinstance(seq, str | list | tuple)
                and isinstance(times, int)
                and len(seq) * times > MAX_TEMPLATE_VALUE
            ):
                raise SecurityError("a chat template may not build a value that large with *")
        return left * right


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(f"The chat template refused the conversation: {message}")


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


SOURCE_GGUF = "gguf"
SOURCE_OVERRIDE = "override"
SOURCE_BUILTIN = "builtin"
SOURCE_FALLBACK = "chatml-fallback"

_FAMILY_TEMPLATES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("gemma", "gemma2", "gemma3", "gemma3n"), "gemma"),
    (("phi3",), "phi3"),
    (("phi4",), "phi4"),
    (("qwen2", "qwen2moe", "qwen3", "qwen3moe", "qwen2vl"), "chatml"),
    (("command-r", "cohere2"), "command-r"),
    (("deepseek2",), "deepseek3"),
    (("chatglm",), "chatglm4"),
    (("granite", "granitemoe"), "granite"),
    (("exaone",), "exaone3"),
    (("minicpm",), "minicpm"),
    (("smollm3",), "chatml"),
)
"""Architectures whose models all speak one built-in template (a proposal, never applied silently)."""
LLAMA3_VOCAB = 128_256
LLAMA2_VOCAB = 32_000


@functools.cache
def builtin_template_names() -> tuple[str, ...]:
    """The names of llama.cpp's built-in chat templates (``chatml``, ``llama3``, ``gemma``...)."""
    import llama_cpp

    count = int(llama_cpp.llama_chat_builtin_templates(None, 0))
    names = (ctypes.c_char_p * max(count, 1))()
    llama_cpp.llama_chat_builtin_templates(names, count)
    return tuple(name.decode("utf-8") for name in names[:count] if name)


def suggest_builtin_template(architecture: str, n_vocab: int | None) -> str | None:
    """The built-in template a model of this architecture most likely speaks, or None when unclear."""
    arch = architecture.lower()
    for family, name in _FAMILY_TEMPLATES:
        if arch in family:
            return name
    if arch == "llama" and n_vocab == LLAMA3_VOCAB:
        return "llama3"
    if arch == "llama" and n_vocab == LLAMA2_VOCAB:
        return "llama2"
    return None


class BuiltinChatFormatter:
    """Renders a conversation with one of llama.cpp's built-in templates (``llama_chat_apply_template``)."""

    def __init__(self, name: str, *, bos_token: str = "", eos_token: str = "") -> None:
        if name not in builtin_template_names():
            raise ChatTemplateError(
                f"{name!r} is not one of llama.cpp's built-in chat templates "
                f"({', '.join(builtin_template_names())})."
            )
        self.name = name
        self.source = SOURCE_BUILTIN
        self.template_text = name
        self.bos_token = bos_token
        self.eos_token = eos_token

    @property
    def label(self) -> str:
        """Which template is in use, for the user."""
        return f"built-in {self.name}"

    def render(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True) -> str:
        """The prompt text for ``messages`` as llama.cpp's built-in template writes it."""
        import llama_cpp

        encoded = [(m.role.encode("utf-8"), m.content.encode("utf-8")) for m in messages]
        chat = (llama_cpp.llama_chat_message * max(len(encoded), 1))()
        for item, (role, content) in zip(chat, encoded, strict=False):
            item.role = role
            item.content = content
        size = 2 * sum(len(role) + len(content) for role, content in encoded) + 1024
        for _ in range(2):
            buf = ctypes.create_string_buffer(size)
            n = int(
                llama_cpp.llama_chat_apply_template(
                    self.name.encode("utf-8"), chat, len(encoded), add_generation_prompt, buf, size
                )
            )
            if n < 0:
                raise ChatTemplateError(
                    f"llama.cpp's built-in template {self.name!r} refused the conversation."
                )
            if n <= size:
                return buf.raw[:n].decode("utf-8", errors="replace")
            size = n + 1
        raise ChatTemplateError(f"llama.cpp's built-in template {self.name!r} gave no stable length.")


class ChatFormatter:
    """Renders a conversation into the prompt text the model was trained on."""

    def __init__(self, template: str | None, *, bos_token: str, eos_token: str) -> None:
        self.source = SOURCE_GGUF if template else SOURCE_FALLBACK
        self.template_text = template or CHATML_TEMPLATE
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.time_limit_s = RENDER_TIME_LIMIT_S
        """Rendering longer than this is stopped with a ChatTemplateError."""
        environment = TemplateSandbox(
            loader=jinja2.BaseLoader(),
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=[jinja2.ext.loopcontrols],
        )
        environment.filters["tojson"] = _tojson
        environment.globals["raise_exception"] = _raise_exception
        environment.globals["strftime_now"] = _strftime_now
        try:
            self._template = environment.from_string(self.template_text)
        except jinja2.TemplateError as exc:
            raise ChatTemplateError(f"The chat template does not compile: {exc}") from None

    @property
    def label(self) -> str:
        """Which template is in use, for the user."""
        return {
            SOURCE_GGUF: "the model's own template",
            SOURCE_OVERRIDE: "chat_template setting (Jinja)",
            SOURCE_FALLBACK: "ChatML (a guess: the model has no chat template)",
        }.get(self.source, self.source)

    @classmethod
    def for_model(
        cls, gguf_template: str | None, override: str | None, *, bos_token: str, eos_token: str
    ) -> ChatFormatter | BuiltinChatFormatter:
        """The override if set (a built-in template's name, or Jinja text), else the GGUF's template,
        else ChatML (``source`` then says it was a guess)."""
        name = (override or "").strip()
        if name and "{" not in name and "\n" not in name:
            return BuiltinChatFormatter(name, bos_token=bos_token, eos_token=eos_token)
        formatter = cls(override or gguf_template, bos_token=bos_token, eos_token=eos_token)
        if override:
            formatter.source = SOURCE_OVERRIDE
        return formatter

    def render(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True) -> str:
        """The prompt text for ``messages``, ending with the assistant's turn opening.

        A template that refuses a system message gets it merged into the first user message.
        """
        payload = [{"role": m.role, "content": m.content} for m in messages]
        try:
            return self._render(payload, add_generation_prompt)
        except ChatTemplateTimeout:
            raise  # another try would take as long
        except ChatTemplateError:
            if not payload or payload[0]["role"] != "system" or len(payload) < 2:
                raise
            system, first, *rest = payload
            merged = {"role": first["role"], "content": f"{system['content']}\n\n{first['content']}"}
            return self._render([merged, *rest], add_generation_prompt)

    def _render(self, payload: list[dict[str, str]], add_generation_prompt: bool) -> str:
        try:
            with _time_limit(self.time_limit_s):
                return self._render_unlimited(payload, add_generation_prompt)
        except _TemplateTimeout:
            raise ChatTemplateTimeout(
                f"The chat template took more than {self.time_limit_s:g} s to render "
                "(a loop that never ends?); the reply was not started."
            ) from None

    def _render_unlimited(self, payload: list[dict[str, str]], add_generation_prompt: bool) -> str:
        limit = MAX_TEMPLATE_OUTPUT + 2 * sum(len(m["content"]) for m in payload)
        try:
            chunks: list[str] = []
            size = 0
            for chunk in self._template.generate(
                messages=payload,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            ):
                size += len(chunk)
                if size > limit:
                    raise ChatTemplateError(
                        f"The chat template produced more than {limit:,} characters for this conversation."
                    )
                chunks.append(chunk)
            return "".join(chunks)
        except ChatTemplateError:
            raise
        except jinja2.TemplateError as exc:
            raise ChatTemplateError(f"The chat template failed to render: {exc}") from None
        except Exception as exc:  # a template can raise anything (TypeError on bad data...)
            raise ChatTemplateError(
                f"The chat template failed to render: {type(exc).__name__}: {exc}"
            ) from None


def with_system_prompt(messages: Sequence[ChatMessage], system_prompt: str | None) -> list[ChatMessage]:
    """Prepend the system prompt unless the conversation already starts with a system message."""
    result = list(messages)
    if system_prompt and not (result and result[0].role == "system"):
        result.insert(0, ChatMessage("system", system_prompt))
    return result
