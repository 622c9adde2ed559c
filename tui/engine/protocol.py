"""The engine's interface, shared by the real llama.cpp engine and test fakes."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tui.engine.events import ChatMessage, EngineEvent, ModelInfo
from tui.engine.live import LiveParams


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """What is needed to load a model."""

    model_path: Path
    n_ctx: int = 2048
    n_gpu_layers: int = 0
    """-1 = all layers."""
    n_threads: int | None = None
    """None = llama.cpp's default."""
    chat_template: str | None = None
    """Overrides the GGUF's own chat template: Jinja text, or the name of a llama.cpp built-in
    template (``chatml``, ``llama3``, ``gemma``...)."""
    top_n: int = 10
    """How many candidates each TokenEvent carries (0 = no candidate capture)."""
    system_prompt: str | None = None
    """Prepended as a system message when a conversation has none."""
    flash_attn: bool = True
    """Use llama.cpp's flash attention (its own default; llama-cpp-python turns it off). About 10%
    faster decoding on CPU; loading falls back to without it if the model or backend refuses."""


class ChatEngine(Protocol):
    """A loaded model that streams replies token by token.

    One thread owns an engine: all calls come from that thread, except that the
    ``cancel`` event and the LiveParams may be set from any thread.
    """

    @property
    def info(self) -> ModelInfo:
        """Facts about the loaded model."""
        ...

    def stream_reply(
        self,
        messages: Sequence[ChatMessage],
        live: LiveParams,
        cancel: threading.Event,
        *,
        continue_from: Sequence[int] = (),
        raw: bool = False,
    ) -> Iterator[EngineEvent]:
        """Generate the assistant's reply to ``messages``.

        Yields PromptTrimmed (if old turns were dropped), PromptProgress, one TokenEvent per
        token, and always a final ReplyDone (also on cancel and on error: errors become a
        StopReason of kind ERROR, never an exception). ``live`` is read before every token.
        ``continue_from``: token ids already fixed at the start of the reply (branching);
        they are evaluated (reusing the KV cache) but not re-emitted.
        ``raw`` (text completion): no chat template and no system prompt; the prompt is the
        messages' contents joined as they are, tokenized as plain text (the model's BOS first if it
        wants one), and the reply continues that text. The same token loop, events and stop rules
        apply. When the text does not fit, its oldest tokens are dropped (PromptTrimmed with
        ``dropped_tokens``).
        """
        ...

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` is."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...
