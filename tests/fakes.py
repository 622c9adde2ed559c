"""A scripted ChatEngine for tests: same interface and stop rules as the real engine, no model.

The fake reads the LiveParams snapshot before every token (and records the version in each
TokenEvent), checks ``cancel`` between tokens, applies max-new-tokens, stop strings and the
context limit, and always ends with exactly one ReplyDone. Timings are scripted (not measured)
so that everything it reports is deterministic.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from settings.sampling import SamplingParams
from tui.engine.events import (
    Candidate,
    ChatMessage,
    CutBy,
    EngineEvent,
    ModelInfo,
    PromptProgress,
    PromptTrimmed,
    ReplyDone,
    StopKind,
    StopReason,
    TokenEvent,
)
from tui.engine.live import LiveParams

EOS_TEXT = "<|im_end|>"
EOS_ID = 2
DEFAULT_SCRIPT = (
    "Hello",
    ",",
    " I",
    " am",
    " a",
    " small",
    " model",
    ".",
    "\n",
    "Ask",
    " me",
    " anything",
    "!",
)


@dataclass(frozen=True, slots=True)
class ScriptedToken:
    """One token the fake will emit, with the probability the 'model' gave it."""

    text: str
    p: float = 0.6
    alternatives: tuple[tuple[str, float], ...] = ()
    """Other candidates (text, raw probability), most likely first after the chosen one."""


def fake_model_info(n_ctx: int = 2048, *, gpu_layers: int | None = None) -> ModelInfo:
    """A fixed ModelInfo for the fake model."""
    return ModelInfo(
        path=Path("/models/FakeLM-135M.Q4_1.gguf"),
        name="FakeLM-135M",
        architecture="llama",
        size_label="135M",
        quantization="Q4_1",
        file_size=98_000_000,
        n_ctx=n_ctx,
        n_ctx_train=8192,
        n_vocab=49152,
        has_chat_template=True,
        eos_text=EOS_TEXT,
        backend="CUDA" if gpu_layers else "CPU",
        gpu_offload_supported=bool(gpu_layers),
        gpu_layers_requested=gpu_layers or 0,
        gpu_layers_offloaded=gpu_layers,
        layers_total=30 if gpu_layers else None,
    )


def _as_scripted(token: str | ScriptedToken, index: int) -> ScriptedToken:
    if isinstance(token, ScriptedToken):
        return token
    # Deterministic, varied probabilities so colour-by-probability shows a range.
    p = (0.95, 0.55, 0.25, 0.8, 0.08, 0.45)[index % 6]
    return ScriptedToken(token, p, ((token.strip() + "s" or "x", (1 - p) * 0.6), (" the", (1 - p) * 0.3)))


@dataclass
class FakeEngine:
    """A ChatEngine that plays back a script of tokens.

    ``end`` says what happens when the script runs out: EOS ends the reply with the EOS token,
    ERROR ends it with ``error_message``, and MAX_TOKENS (or CONTEXT_FULL) repeats the script
    until max-new-tokens, the context limit, a stop string or cancel ends it.
    """

    script: Sequence[str | ScriptedToken] = DEFAULT_SCRIPT
    end: StopKind = StopKind.EOS
    delay_s: float = 0.0
    """Real time slept per token (cancel interrupts the sleep)."""
    n_ctx: int = 2048
    error_message: str = "llama_decode returned 1"
    token_ms: float = 10.0
    """Scripted time per token (reported, not slept)."""
    prompt_ms: float = 40.0
    hold_at: int | None = None
    """If set, stop before emitting this token index until :meth:`release` is called."""
    gpu_layers: int | None = None
    trimmed: PromptTrimmed | None = None
    """If set, every reply starts by reporting that old turns were dropped."""
    calls: list[tuple[ChatMessage, ...]] = field(default_factory=list)
    raw_calls: list[bool] = field(default_factory=list)
    """For each call: text completion (``raw``) or chat."""
    """The messages of every stream_reply call."""
    versions_seen: list[int] = field(default_factory=list)
    """The params version read before every token, across all replies."""
    closed: bool = False
    reached_hold: threading.Event = field(default_factory=threading.Event)
    _release: threading.Event = field(default_factory=threading.Event)

    @property
    def info(self) -> ModelInfo:
        """Facts about the fake model."""
        return fake_model_info(self.n_ctx, gpu_layers=self.gpu_layers)

    def release(self) -> None:
        """Let a reply held at ``hold_at`` continue."""
        self._release.set()

    def count_tokens(self, text: str) -> int:
        """One token per whitespace-separated word (deterministic)."""
        return len(text.split())

    def close(self) -> None:
        """Mark the fake closed."""
        self.closed = True

    def prompt_tokens(self, messages: Sequence[ChatMessage], *, raw: bool = False) -> int:
        """Formatted prompt size: 3 tokens of template per message plus its words, plus 3; text
        completion (``raw``): the joined texts' words plus a BOS, no template."""
        if raw:
            return self.count_tokens("".join(m.content for m in messages)) + 1
        return sum(3 + self.count_tokens(m.content) for m in messages) + 3

    def _candidates(self, tok: ScriptedToken, token_id: int, params: SamplingParams) -> tuple[Candidate, ...]:
        raw = [(tok.text, tok.p, token_id), *((t, p, 1000 + i) for i, (t, p) in enumerate(tok.alternatives))]
        raw.sort(key=lambda c: -c[1])
        cut: list[CutBy | None] = []
        mass = 0.0
        for rank, (_text, p, _tid) in enumerate(raw):
            if params.is_greedy:
                cut.append(None if rank == 0 else CutBy.GREEDY)
            elif params.top_k and rank >= params.top_k:
                cut.append(CutBy.TOP_K)
            elif mass >= params.top_p:
                cut.append(CutBy.TOP_P)
            elif p < params.min_p * raw[0][1]:
                cut.append(CutBy.MIN_P)
            else:
                cut.append(None)
            mass += p
        temp = params.temperature if not params.is_greedy and params.temperature > 0 else 1.0
        weights = [(p ** (1.0 / temp)) if c is None else 0.0 for (_t, p, _i), c in zip(raw, cut, strict=True)]
        total = sum(weights) or 1.0
        return tuple(
            Candidate(
                token_id=tid,
                text=text,
                logit=math.log(max(p, 1e-9)),
                p_raw=p,
                p_final=w / total,
                cut_by=c,
            )
            for (text, p, tid), c, w in zip(raw, cut, weights, strict=True)
        )

    def stream_reply(
        self,
        messages: Sequence[ChatMessage],
        live: LiveParams,
        cancel: threading.Event,
        *,
        continue_from: Sequence[int] = (),
        raw: bool = False,
    ) -> Iterator[EngineEvent]:
        """Play the script as a reply to ``messages`` (see the class docstring for the stop rules)."""
        self.calls.append(tuple(messages))
        self.raw_calls.append(raw)
        self.reached_hold.clear()
        self._release.clear()
        prompt_tokens = self.prompt_tokens(messages, raw=raw)
        if self.trimmed is not None:
            yield self.trimmed
        yield PromptProgress(prompt_tokens, prompt_tokens)
        versions: dict[int, SamplingParams] = {}
        ids: list[int] = []
        text = ""
        seed = 0
        stop: StopReason | None = None
        index = 0
        while stop is None:
            if self.hold_at is not None and index == self.hold_at:
                self.reached_hold.set()
                while not self._release.wait(0.01):
                    if cancel.is_set():
                        break
            if cancel.is_set():
                stop = StopReason(StopKind.CANCELLED, generated=index)
                break
            version, params = live.snapshot()
            versions.setdefault(version, params)
            if index == 0:
                seed = params.seed if params.seed >= 0 else 1234
            self.versions_seen.append(version)
            if index >= params.max_new_tokens:
                stop = StopReason(StopKind.MAX_TOKENS, limit=params.max_new_tokens, generated=index)
                break
            if prompt_tokens + index >= self.n_ctx:
                stop = StopReason(StopKind.CONTEXT_FULL, limit=self.n_ctx, generated=index)
                break
            if index >= len(self.script) and self.end is StopKind.EOS:
                stop = StopReason(StopKind.EOS, token_id=EOS_ID, token_text=EOS_TEXT, generated=index)
                break
            if index >= len(self.script) and self.end is StopKind.ERROR:
                stop = StopReason(StopKind.ERROR, message=self.error_message, generated=index)
                break
            if not self.script:
                stop = StopReason(StopKind.EOS, token_id=EOS_ID, token_text=EOS_TEXT, generated=index)
                break
            tok = _as_scripted(self.script[index % len(self.script)], index)
            token_id = 100 + index % len(self.script)
            if self.delay_s:
                cancel.wait(self.delay_s)
            candidates = self._candidates(tok, token_id, params)
            chosen = next(c for c in candidates if c.token_id == token_id)
            entropy = -sum(c.p_raw * math.log2(c.p_raw) for c in candidates if c.p_raw > 0)
            ids.append(token_id)
            text += tok.text
            yield TokenEvent(
                index=index,
                token_id=token_id,
                text=tok.text,
                piece=tok.text,
                p_raw=tok.p,
                p_final=chosen.p_final,
                candidates=candidates,
                entropy=entropy,
                params_version=version,
                elapsed_ms=self.token_ms,
            )
            index += 1
            for stop_string in params.stop:
                at = text.find(stop_string)
                if at >= 0:
                    text = text[:at]
                    stop = StopReason(StopKind.STOP_STRING, stop_string=stop_string, generated=index)
                    break
            if stop is None and self.delay_s == 0:
                time.sleep(0)  # let other threads (the UI) run
        yield ReplyDone(
            stop=stop,
            text=text,
            token_ids=tuple(ids),
            prompt_tokens=prompt_tokens,
            prompt_evaluated=prompt_tokens,
            prompt_ms=self.prompt_ms,
            first_token_ms=self.prompt_ms + self.token_ms if ids else None,
            decode_ms=self.token_ms * max(len(ids) - 1, 0),
            seed=seed,
            params=versions,
        )
