"""What the engine reports: token events, stop reasons, model facts. Plain frozen dataclasses.

This module is the contract between the engine (no Textual) and everything that shows or
stores its output (the TUI, the ``generate`` command, the chat store, benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from settings.sampling import SamplingParams


class StopKind(StrEnum):
    """Why a reply ended. Exactly one per reply."""

    EOS = "eos"
    """The model emitted an end-of-generation token (e.g. ``<|im_end|>``)."""
    MAX_TOKENS = "max_tokens"
    """The max-new-tokens cap was reached."""
    STOP_STRING = "stop_string"
    """One of the stop strings appeared in the reply."""
    CONTEXT_FULL = "context_full"
    """The context window has no room for another token."""
    CANCELLED = "cancelled"
    """The user cancelled the reply."""
    ERROR = "error"
    """Generation failed; ``message`` says why."""


@dataclass(frozen=True, slots=True)
class StopReason:
    """Why a reply ended, with the detail that matters for that kind."""

    kind: StopKind
    token_id: int | None = None
    """EOS: the end-of-generation token id."""
    token_text: str | None = None
    """EOS: its text, e.g. ``<|im_end|>``."""
    limit: int | None = None
    """MAX_TOKENS: the cap; CONTEXT_FULL: the context size."""
    generated: int | None = None
    """How many tokens the reply has."""
    stop_string: str | None = None
    """STOP_STRING: which stop string matched."""
    message: str | None = None
    """ERROR: what went wrong (one line, for the user)."""

    def label(self) -> str:
        """A short human label, as shown on the stop badge."""
        match self.kind:
            case StopKind.EOS:
                if self.token_text is None and self.message:  # a server said so without the token
                    return f"end of sequence ({self.message})"
                return f"end of sequence {self.token_text or ''}".rstrip()
            case StopKind.MAX_TOKENS:
                return f"stopped at {self.generated}/{self.limit} tokens (max new tokens)"
            case StopKind.STOP_STRING:
                return f"stop string {self.stop_string!r}"
            case StopKind.CONTEXT_FULL:
                return f"context full ({self.limit} tokens)"
            case StopKind.CANCELLED:
                return f"cancelled after {self.generated or 0} tokens"
            case StopKind.ERROR:
                return f"error: {self.message}"
        raise AssertionError(self.kind)  # pragma: no cover


class CutBy(StrEnum):
    """Which sampler removed a candidate from the running."""

    GREEDY = "greedy"
    """Greedy mode keeps only the arg-max."""
    TOP_K = "top_k"
    TOP_P = "top_p"
    MIN_P = "min_p"
    BANNED = "banned"
    """The logit bias bans it (bias -inf)."""
    GRAMMAR = "grammar"
    """The grammar (or JSON schema) does not allow it here."""
    TOP_N_SIGMA = "top_n_sigma"
    TYPICAL = "typ_p"
    XTC = "xtc"
    """XTC fired and removed it as one of the top choices."""
    MIROSTAT = "mirostat"
    TEMPERATURE = "temperature"
    """Temperature 0 keeps only the arg-max."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One of the top-N tokens the model weighed at a step."""

    token_id: int
    text: str
    """The token's text (display form: invalid UTF-8 fragments shown as replacement chars)."""
    logit: float
    """Raw logit from the model (before penalties)."""
    p_raw: float
    """Probability in the raw distribution: softmax of the raw logits at temperature 1."""
    p_final: float
    """Probability after the active samplers (penalties, top-k, top-p, min-p, temperature); 0 if cut."""
    cut_by: CutBy | None
    """The sampler that removed it, or None if it survived."""


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """One generated token, with what the model weighed to pick it."""

    index: int
    """Position in the reply, from 0."""
    token_id: int
    text: str
    """Exact text this token adds to the reply (incrementally decoded UTF-8; may be '' when a
    character is split across tokens, and then the next token carries it)."""
    piece: str
    """The token's own bytes shown as text (replacement chars for partial UTF-8)."""
    p_raw: float
    """Probability of the chosen token at temperature 1."""
    p_final: float
    """Probability of the chosen token after the active samplers."""
    candidates: tuple[Candidate, ...]
    """Top-N candidates by raw logit, most likely first."""
    entropy: float
    """Entropy of the raw distribution at this step, in bits."""
    params_version: int
    """Version of the live parameters that produced this token."""
    elapsed_ms: float
    """Time spent on this token: decode of the previous token + sampling + candidates."""
    stages: tuple[tuple[str, int], ...] = ()
    """(stage, how many tokens it left) for each stage of the sampler chain, in order (empty when
    candidates were not captured, or for events restored from a store that does not keep them)."""


@dataclass(frozen=True, slots=True)
class PromptProgress:
    """Prompt evaluation progress (sent between batches)."""

    evaluated: int
    total: int
    context: int = 0
    """Tokens in the context once the prompt is evaluated (the prompt plus a branch's fixed tokens);
    0 when the engine does not say. The status bar's context gauge counts on from it while a reply streams."""


@dataclass(frozen=True, slots=True)
class PromptTrimmed:
    """The conversation did not fit the context: the oldest turns were dropped."""

    dropped_messages: int
    prompt_tokens: int
    n_ctx: int
    dropped_tokens: int = 0
    """Text completion: how many of the text's first tokens were dropped (messages stay 0)."""


@dataclass(frozen=True, slots=True)
class ReplyDone:
    """The final event of every reply."""

    stop: StopReason
    text: str
    """The full reply text (stop string excluded)."""
    token_ids: tuple[int, ...]
    prompt_tokens: int
    """Tokens in the formatted prompt."""
    prompt_evaluated: int
    """Prompt tokens actually evaluated (the rest came from the KV cache)."""
    prompt_ms: float
    first_token_ms: float | None
    """Time from the start of the reply to the first token event."""
    decode_ms: float
    """Time from the first token to the end."""
    seed: int
    """The seed actually used (resolved when the params said -1)."""
    params: dict[int, SamplingParams] = field(default_factory=dict)
    """Every parameter version used in this reply, by version number."""

    @property
    def generated(self) -> int:
        """How many tokens were generated."""
        return len(self.token_ids)

    @property
    def tokens_per_s(self) -> float:
        """Decode speed after the first token (0 when not measurable)."""
        if len(self.token_ids) < 2 or self.decode_ms <= 0:
            return 0.0
        return (len(self.token_ids) - 1) * 1000.0 / self.decode_ms


EngineEvent = PromptProgress | PromptTrimmed | TokenEvent | ReplyDone
"""Everything :meth:`Engine.stream_reply` yields; the last one is always a ReplyDone."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn of the conversation as the engine sees it."""

    role: str
    """"system", "user" or "assistant"."""
    content: str


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Facts about the loaded model and where it runs."""

    path: Path
    name: str
    architecture: str
    size_label: str
    """Parameter count or size label, e.g. "135M"."""
    quantization: str
    """e.g. "Q4_1"."""
    file_size: int
    n_ctx: int
    """Context size in use (llama.cpp rounds up to a multiple of 256)."""
    n_ctx_train: int
    n_vocab: int
    has_chat_template: bool
    eos_text: str
    backend: str
    """"CPU", "CUDA", "Metal", ..."""
    gpu_offload_supported: bool
    gpu_layers_requested: int
    gpu_layers_offloaded: int | None
    """From llama.cpp's log ``offloaded N/M layers to GPU``; None when not reported."""
    layers_total: int | None
    warnings: tuple[str, ...] = ()
    """Loud warnings for the user, e.g. GPU layers asked for but the build can't offload."""
    server: str | None = None
    """host:port of the server running the model (``backend`` then names the kind); None = in process."""
    chat_template_label: str = ""
    """Which chat template is in use, for the user ("the model's own template", "built-in llama3"...)."""

    @property
    def gpu_label(self) -> str:
        """ "GPU 31/31", "CPU", or for a served model its backend and server ("llama-server host:8080")."""
        if self.server:
            return f"{self.backend} {self.server}"
        if self.gpu_layers_offloaded:
            return f"GPU {self.gpu_layers_offloaded}/{self.layers_total or '?'}"
        return "CPU"


class EngineError(Exception):
    """A failure with a message meant for the user (no traceback needed)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class ModelLoadError(EngineError):
    """The model file could not be loaded (missing, not GGUF, truncated, unknown architecture...)."""
