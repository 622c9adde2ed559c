"""What both server engines share: their configuration, the reply's bookkeeping, and the fault rules.

A server backend keeps the engine protocol's promises exactly as the local engine does: one final
ReplyDone (also on cancel and on any failure, which becomes a stop reason of kind ERROR with the
cause), the partial reply kept, every parameter version recorded. What a server can't report is
NaN (probabilities, logits, entropy) or -1 (token ids), never a made-up number.
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from settings.sampling import SEED_MAX, SamplingParams
from tui.engine.events import (
    ChatMessage,
    EngineError,
    ModelInfo,
    ReplyDone,
    StopKind,
    StopReason,
    TokenEvent,
)
from tui.engine.live import LiveParams
from tui.engine.reply_end import reply_done

UNKNOWN = math.nan
"""A probability, logit or entropy the server did not report."""
UNKNOWN_TOKEN = -1
"""A token id the server did not report (OpenAI-compatible servers send text, not ids)."""
SEED_STEP = 0x9E3779B1
"""A resume after a mid-reply change reseeds with seed + k * this (as the local engine's rebuild)."""


@dataclass(frozen=True)
class ServerConfig:
    """How to reach one server and what to ask it for."""

    kind: str
    """"llama-server" or "openai"."""
    url: str
    model: str | None = None
    """The model name to ask for (OpenAI-compatible servers); None = the server's only/first model."""
    api_key: str | None = field(default=None, repr=False)
    """Sent as ``Authorization: Bearer``; never logged, stored or shown."""
    top_n: int = 10
    system_prompt: str | None = None
    probs: str = "sampled"
    """llama-server, sample mode: "sampled" = each candidate's probability after the samplers (what
    the token view colours by; p at T=1 unknown), "raw" = before them (then p after sampling unknown).
    Greedy replies always get the raw ones: after arg-max every probability is known."""
    openai_extensions: bool = True
    """Send top_k, min_p and repeat_penalty to an OpenAI-compatible server (llama.cpp's, vLLM)."""
    read_timeout_s: float | None = None
    """Longest silence of a stream before it counts as failed (None = wait; Esc still cancels)."""

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers for every request."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @property
    def where(self) -> str:
        """host:port (what the status bar shows)."""
        return self.url.split("://", 1)[-1].rstrip("/")


def with_system(messages: Sequence[ChatMessage], system_prompt: str | None) -> list[ChatMessage]:
    """``messages`` with the system prompt first when they have none."""
    msgs = list(messages)
    if system_prompt and not (msgs and msgs[0].role == "system"):
        msgs.insert(0, ChatMessage("system", system_prompt))
    return msgs


def server_model_info(
    config: ServerConfig,
    *,
    name: str,
    path: str = "",
    n_ctx: int = 0,
    n_ctx_train: int = 0,
    n_vocab: int = 0,
    n_params: int | None = None,
    file_size: int = 0,
    has_chat_template: bool = True,
    eos_text: str = "",
    warnings: tuple[str, ...] = (),
) -> ModelInfo:
    """ModelInfo for a model served elsewhere: what the server reports, empty where it says nothing."""
    quant = ""
    stem = Path(path or name).name
    for part in reversed(stem.replace(".gguf", "").replace("-", ".").split(".")):
        if part[:1] in ("Q", "q", "F", "f", "I", "i", "B", "b") and any(c.isdigit() for c in part):
            quant = part.upper()
            break
    if name.endswith(".gguf"):  # llama.cpp servers name the model by its file path
        name = Path(name).name
    return ModelInfo(
        path=Path(path or name),
        name=name,
        architecture="",
        size_label=_size_label(n_params),
        quantization=quant,
        file_size=file_size,
        n_ctx=n_ctx,
        n_ctx_train=n_ctx_train,
        n_vocab=n_vocab,
        has_chat_template=has_chat_template,
        eos_text=eos_text,
        backend=config.kind,
        gpu_offload_supported=False,
        gpu_layers_requested=0,
        gpu_layers_offloaded=None,
        layers_total=None,
        warnings=warnings,
        server=config.where,
    )


def _size_label(n_params: int | None) -> str:
    if not n_params:
        return ""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n_params >= scale:
            return f"{n_params / scale:.0f}{suffix}"
    return str(n_params)


@dataclass(frozen=True, slots=True)
class Resume:
    """One mid-reply parameter change served by stopping the stream and asking again."""

    at_token: int
    """Reply tokens fixed when the new request was sent."""
    reevaluated: int
    """Tokens the server evaluated again (its ``timings.prompt_n``); 0 when it did not say."""
    cached: int
    """Tokens it reused from its prompt cache."""
    added_ms: float
    """From the change being noticed to the next token arriving."""


class ReplyState:
    """The bookkeeping of one server reply (the same fields as the local engine's)."""

    def __init__(self, live: LiveParams, cancel: threading.Event, fixed: Sequence[int]) -> None:
        self.live = live
        self.cancel = cancel
        self.tokens: list[int] = list(fixed)
        self.text = ""
        self.stop: StopReason | None = None
        self.versions: dict[int, SamplingParams] = {}
        self.prompt_tokens = 0
        self.prompt_evaluated = 0
        self.prompt_ms = 0.0
        self.first_token_ms: float | None = None
        self.started = time.perf_counter()
        self.first_token_at: float | None = None
        self.ended_at: float | None = None
        self.last_token_at: float | None = None
        self.resumes: list[Resume] = []
        self.server_timings: dict[str, Any] = {}
        """The server's own ``timings`` of the last request (llama-server)."""
        version, params = live.snapshot()
        self.version, self.params = version, params
        self.versions[version] = params
        self.seed = params.seed if params.seed >= 0 else random.SystemRandom().randint(0, SEED_MAX)

    def note(self, version: int, params: SamplingParams) -> None:
        """Record a parameter version as in force from now on."""
        self.version, self.params = version, params
        self.versions.setdefault(version, params)

    def seed_for(self, requests: int) -> int:
        """The seed of the ``requests``-th request of this reply (0 = the first)."""
        seed = self.params.seed if self.params.seed >= 0 else self.seed
        return (seed + requests * SEED_STEP) % (SEED_MAX + 1)

    def token_arrived(self, event: TokenEvent) -> TokenEvent:
        """Time the token: the first one's latency, and each one's gap since the one before."""
        now = time.perf_counter()
        if self.first_token_at is None:
            self.first_token_at = now
            self.first_token_ms = (now - self.started) * 1000.0
        previous, self.last_token_at = self.last_token_at, now
        return dataclasses.replace(event, elapsed_ms=(now - (previous or self.started)) * 1000.0)

    def end(self, kind: StopKind, **detail: Any) -> None:
        """Set the stop reason (the first one wins)."""
        if self.stop is None:
            self.ended_at = time.perf_counter()
            self.stop = StopReason(kind, generated=len(self.tokens), **detail)

    def fail(self, exc: BaseException) -> None:
        """A failure as the stop reason (partial reply kept)."""
        message = exc.message if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
        self.end(StopKind.ERROR, message=message)

    def done(self) -> ReplyDone:
        """The final event."""
        return reply_done(self)
