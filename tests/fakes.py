"""A scripted ChatEngine for tests: the real engine's rules and sampling maths, no model.

The script says which token the "model" emits at each position, the probability it gave that
token and a few alternatives. From these the fake builds logits over a vocabulary of
``FAKE_VOCAB`` tokens (the rest of the probability mass spread evenly over the other tokens) and
runs them through the real engine's maths: the raw statistics of ``sampling_math.step_distribution``
(top-N candidates by raw logit, p_raw, entropy) and the engine's sampler chain in numpy,
``chain_math.chain_result`` (the stages ``chain.chain_specs`` builds, in ``params.samplers`` order:
logit bias, penalties over the reply so far, top-n-sigma, top-k, typical-p, top-p, min-p, XTC,
temperature, greedy). So candidates, p_final, cut_by and the stages' survivors are what the real
engine reports for such logits. XTC fires when a draw seeded by the reply's seed and the token's
index falls below its probability (always at probability 1); DRY, grammars and mirostat need
llama.cpp and raise ``chain_math.UnsupportedSampler``. The draw is scripted: the scripted token
when the samplers keep it, else the most probable survivor (greedy: the arg-max), since no draw
lands on a token the samplers cut. Each text has one token id (as in a real vocabulary).

The rules are LlamaEngine's: the LiveParams snapshot is read before every token (its version is
recorded in the TokenEvent), ``cancel`` is checked between tokens, max-new-tokens counts the whole
reply (``continue_from`` included), stop strings are found as the engine finds them, the oldest
turns are dropped when the prompt leaves too little room, the reply ends on context full where the
engine does (prompt + reply = n_ctx + 1: the last token drawn is never evaluated), and there is
always exactly one ReplyDone. ``continue_from``: the fixed tokens are evaluated against a
simulated KV cache (``prompt_evaluated`` counts what follows the common prefix) and not re-emitted;
the script goes on at their position, or ``branch_script`` is played after them (the inspector's
branching mode). Timings are scripted (not measured) so that everything reported is deterministic.
"""

from __future__ import annotations

import codecs
import dataclasses
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from settings.sampling import SamplingParams
from tui.engine.chain_math import chain_result
from tui.engine.events import (
    Candidate,
    ChatMessage,
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
from tui.engine.llama_engine import find_stop_string
from tui.engine.sampling_math import StepDistribution, step_distribution

EOS_TEXT = "<|im_end|>"
EOS_ID = 2
TEMPLATE_IDS = (3, 4, 5)
"""The template's tokens around each message (like ``<|im_start|>``, a role, a newline)."""
FAKE_VOCAB = 4_096
"""The fake model's vocabulary size (small: the statistics of each token stay cheap in tests)."""
FIRST_TEXT_ID = 100
"""Scripted texts get token ids from here on, in the order the fake first meets them."""
WORD_IDS = (100, FAKE_VOCAB)
"""Prompt words are tokens in this range (a hash of the word; only the KV-cache simulation reads them)."""
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
        n_vocab=FAKE_VOCAB,
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


def _word_id(word: str) -> int:
    low, high = WORD_IDS
    return zlib.crc32(word.encode()) % (high - low) + low


@dataclass
class FakeEngine:
    """A ChatEngine that plays back a script of tokens (see the module docstring).

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
    """If set, every reply starts by reporting that old turns were dropped (and drops none)."""
    branch_script: Sequence[str | ScriptedToken] | None = None
    """Branching mode: played after the fixed tokens of a reply that has ``continue_from``."""
    calls: list[tuple[ChatMessage, ...]] = field(default_factory=list)
    """The messages of every stream_reply call."""
    raw_calls: list[bool] = field(default_factory=list)
    """For each call: text completion (``raw``) or chat."""
    continued: list[tuple[int, ...]] = field(default_factory=list)
    """The ``continue_from`` of every call."""
    versions_seen: list[int] = field(default_factory=list)
    """The params version read before every token, across all replies."""
    cache: list[int] = field(default_factory=list)
    """The simulated KV cache: the tokens evaluated so far (prompt + reply, not the last drawn)."""
    closed: bool = False
    reached_hold: threading.Event = field(default_factory=threading.Event)
    _release: threading.Event = field(default_factory=threading.Event)
    _ids: dict[str, int] = field(default_factory=dict)
    _texts: dict[int, str] = field(default_factory=dict)

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

    def prompt_ids(self, messages: Sequence[ChatMessage], *, raw: bool = False) -> list[int]:
        """The formatted prompt: 3 template tokens and the words of each message, then 3 more; text
        completion (``raw``): a BOS and the joined texts' words, no template."""
        if raw:
            return [1, *(_word_id(word) for word in "".join(m.content for m in messages).split())]
        ids: list[int] = []
        for message in messages:
            ids += [*TEMPLATE_IDS, *(_word_id(word) for word in message.content.split())]
        return [*ids, *TEMPLATE_IDS]

    def prompt_tokens(self, messages: Sequence[ChatMessage], *, raw: bool = False) -> int:
        """Formatted prompt size: 3 tokens of template per message plus its words, plus 3 (see
        :meth:`prompt_ids` for ``raw``)."""
        return len(self.prompt_ids(messages, raw=raw))

    def token_id(self, text: str) -> int:
        """The token id of a scripted text (the same text always has the same id)."""
        token = self._ids.get(text)
        if token is None:
            token = FIRST_TEXT_ID + len(self._ids)
            if token >= FAKE_VOCAB:
                raise ValueError("the fake's vocabulary ran out of ids for scripted texts")
            self._ids[text] = token
            self._texts[token] = text
        return token

    def token_text(self, token_id: int) -> str:
        """A token's text (EOS and never-scripted tokens have stand-in texts)."""
        if token_id == EOS_ID:
            return EOS_TEXT
        return self._texts.get(token_id, f"<unused{token_id}>")

    def logits(self, tok: ScriptedToken) -> tuple[np.ndarray, list[int]]:
        """The fake model's logits for a scripted step (float32, like llama.cpp's) and the ids of
        its scripted candidates (the chosen one first): log of each probability, the rest of
        the mass spread evenly over the rest of the vocabulary (each below every scripted one)."""
        probs: dict[int, float] = {}
        for text, p in ((tok.text, tok.p), *tok.alternatives):
            probs.setdefault(self.token_id(text), max(p, 1e-12))
        rest = max(1.0 - sum(probs.values()), 1e-9) / (FAKE_VOCAB - len(probs))
        rest = min(rest, 0.5 * min(probs.values()))
        logits = np.full(FAKE_VOCAB, np.log(rest), dtype=np.float32)
        ids = list(probs)
        logits[ids] = np.log(np.array([probs[i] for i in ids]))
        return logits, ids

    def _step(
        self, tok: ScriptedToken, params: SamplingParams, history: Sequence[int], seed: int
    ) -> tuple[int, float, float, StepDistribution]:
        """The real engine's statistics for this step and the scripted draw: (token, p_raw,
        p_final, step). ``history``: the reply's tokens so far (the penalties')."""
        logits, ids = self.logits(tok)
        scripted = ids[0]
        # The raw statistics as the engine's _step takes them (no sampler applied)...
        raw = step_distribution(
            logits, top_n=len(ids), greedy=True, top_k=0, top_p=1.0, min_p=0.0, temperature=1.0
        )
        # ... and the chain's fate of every token, as the engine's chain run reports it.
        fires = float(np.random.default_rng([seed, len(history)]).random()) < params.xtc_probability
        chain = chain_result(logits, params, history, xtc_fires=fires)
        step = dataclasses.replace(
            raw,
            top_p_final=[float(chain.p_final[t]) for t in raw.top_ids],
            top_cut_by=[chain.cut_at(t) for t in raw.top_ids],
            stages=chain.survivors,
        )
        token = scripted
        if chain.p_final[scripted] <= 0.0:  # cut: the draw lands on the most probable survivor
            token = int(np.argmax(chain.p_final))
        return token, step.p_raw_of(float(logits[token])), float(chain.p_final[token]), step

    def _fit(
        self, messages: Sequence[ChatMessage], extra: int, params: SamplingParams, raw: bool = False
    ) -> tuple[list[int], int]:
        """The engine's rule: drop the oldest turns (keeping a system message and the last one)
        while the prompt leaves less than min(max_new_tokens, n_ctx / 4) tokens of room."""
        system = list(messages[:1]) if messages and messages[0].role == "system" else []
        body = list(messages[len(system) :])
        reserve = min(params.max_new_tokens, self.n_ctx // 4)
        dropped = 0
        prompt = self.prompt_ids(messages, raw=raw)
        while len(prompt) + extra + reserve > self.n_ctx and len(body) > 1:
            body = body[1:]
            dropped += 1
            while len(body) > 1 and body[0].role != "user":
                body = body[1:]
                dropped += 1
            prompt = self.prompt_ids([*system, *body], raw=raw)
        return prompt, dropped

    def stream_reply(
        self,
        messages: Sequence[ChatMessage],
        live: LiveParams,
        cancel: threading.Event,
        *,
        continue_from: Sequence[int] = (),
        raw: bool = False,
    ) -> Iterator[EngineEvent]:
        """Play the script as a reply to ``messages`` (see the module docstring for the rules);
        ``raw``: text completion (no template)."""
        self.calls.append(tuple(messages))
        self.raw_calls.append(raw)
        self.continued.append(tuple(continue_from))
        self.reached_hold.clear()
        self._release.clear()
        fixed = list(continue_from)
        version, params = live.snapshot()
        versions: dict[int, SamplingParams] = {version: params}
        seed = params.seed if params.seed >= 0 else 1234
        tokens = list(fixed)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = "".join(decoder.decode(self.token_text(t).encode()) for t in fixed)
        prompt, dropped = self._fit(messages, len(fixed), params, raw)
        stop: StopReason | None = None
        evaluated = 0
        if len(prompt) + len(fixed) + 1 > self.n_ctx:  # the engine's PromptTooLong
            stop = StopReason(
                StopKind.ERROR,
                message=f"The message is too long for the context: the prompt is {len(prompt) + len(fixed)} "
                f"tokens but the context holds {self.n_ctx} (n_ctx), with room needed for the reply.",
                generated=len(tokens),
            )
        else:
            if self.trimmed is not None:
                yield self.trimmed
            elif dropped:
                yield PromptTrimmed(dropped_messages=dropped, prompt_tokens=len(prompt), n_ctx=self.n_ctx)
            full = prompt + fixed
            common = 0
            for cached, wanted in zip(self.cache, full[:-1], strict=False):
                if cached != wanted:
                    break
                common += 1
            evaluated = len(full) - common
            self.cache = full
            yield PromptProgress(evaluated, evaluated)
        if fixed and self.branch_script is not None:
            script, position = self.branch_script, 0
        else:
            script, position = self.script, len(fixed)
        while stop is None:
            index = len(tokens)
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
            self.versions_seen.append(version)
            if index >= params.max_new_tokens:
                stop = StopReason(StopKind.MAX_TOKENS, limit=params.max_new_tokens, generated=index)
                break
            if not script or (position >= len(script) and self.end is StopKind.EOS):
                stop = StopReason(StopKind.EOS, token_id=EOS_ID, token_text=EOS_TEXT, generated=index)
                break
            if position >= len(script) and self.end is StopKind.ERROR:
                stop = StopReason(StopKind.ERROR, message=self.error_message, generated=index)
                break
            tok = _as_scripted(script[position % len(script)], position)
            position += 1
            if self.delay_s:
                cancel.wait(self.delay_s)
            token, p_raw, p_final, step = self._step(tok, params, tokens, seed)
            piece = self.token_text(token)
            candidates = tuple(
                Candidate(tid, self.token_text(tid), logit, raw, final, cut)
                for tid, logit, raw, final, cut in zip(
                    step.top_ids,
                    step.top_logits,
                    step.top_p_raw,
                    step.top_p_final,
                    step.top_cut_by,
                    strict=True,
                )
            )
            event = TokenEvent(
                index=index,
                token_id=token,
                text=decoder.decode(piece.encode()),
                piece=piece,
                p_raw=p_raw,
                p_final=p_final,
                candidates=candidates,
                entropy=step.entropy_bits,
                params_version=version,
                elapsed_ms=self.token_ms,
                stages=step.stages,
            )
            tokens.append(token)
            previous_len = len(text)
            text += event.text
            yield event
            if params.stop:
                longest = max(len(s) for s in params.stop)
                found = find_stop_string(text, params.stop, max(0, previous_len - longest + 1))
                if found is not None:
                    text = text[: found[0]]
                    stop = StopReason(StopKind.STOP_STRING, stop_string=found[1], generated=len(tokens))
                    break
            version, params = live.snapshot()
            if len(tokens) >= params.max_new_tokens:
                versions.setdefault(version, params)
                stop = StopReason(StopKind.MAX_TOKENS, limit=params.max_new_tokens, generated=len(tokens))
                break
            if cancel.is_set():
                stop = StopReason(StopKind.CANCELLED, generated=len(tokens))
                break
            if len(self.cache) >= self.n_ctx:  # the engine's check: the context holds n_ctx tokens
                stop = StopReason(StopKind.CONTEXT_FULL, limit=self.n_ctx, generated=len(tokens))
                break
            self.cache.append(token)  # evaluate it (llama_decode)
            if self.delay_s == 0:
                time.sleep(0)  # let other threads (the UI) run
        new = len(tokens) - len(fixed)
        yield ReplyDone(
            stop=stop,
            text=text,
            token_ids=tuple(tokens),
            prompt_tokens=len(prompt),
            prompt_evaluated=evaluated,
            prompt_ms=self.prompt_ms,
            first_token_ms=self.prompt_ms + self.token_ms if new else None,
            decode_ms=self.token_ms * max(new - 1, 0),
            seed=seed,
            params=versions,
        )
