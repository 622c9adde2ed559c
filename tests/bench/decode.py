"""Decode-speed contenders: llama-cpp-python streaming, our engine, a raw llama_decode loop.

Every contender gets the same chat prompt, the same parameters, 2 threads and N_GEN new tokens
(EOS ignored, see :func:`tests.bench.common.ignore_eos`). Speed is measured outside the
contender, the same way for all: (tokens - 1) / (time of the last token - time of the first).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from settings.sampling import SamplingParams
from tests.bench.common import FLASH_ATTN, N_CTX, N_GEN, PROMPT, SEED, SYSTEM_PROMPT, THREADS, tokens_per_s


@dataclass(frozen=True)
class DecodeRun:
    """One reply: speed and how many tokens it had."""

    tok_s: float
    tokens: int
    per_token_ms: tuple[float, ...] = ()
    """Our engine only: TokenEvent.elapsed_ms of each token."""


class Contender(Protocol):
    """Something that generates N_GEN tokens for the benchmark prompt."""

    name: str

    def run(self, params: SamplingParams) -> DecodeRun:
        """Generate one reply with ``params`` and time it."""
        ...


def chat_messages() -> list[dict[str, str]]:
    """The benchmark conversation, as role/content dicts."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": PROMPT}]


def _load_llama(model: Path, **kwargs: Any) -> Any:
    from llama_cpp import Llama

    return Llama(
        model_path=str(model),
        n_ctx=N_CTX,
        n_threads=THREADS,
        n_threads_batch=THREADS,
        n_gpu_layers=0,
        seed=SEED,
        verbose=False,
        flash_attn=FLASH_ATTN,
        **kwargs,
    )


def prompt_tokens(llm: Any) -> list[int]:
    """The benchmark chat rendered with the GGUF's own template, tokenized (special tokens on); for a
    model without a template, its texts as plain text."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:  # a base model: the conversation as plain text
        text = "\n\n".join(m["content"] for m in chat_messages())
        return list(llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))
    eos = llm._model.token_get_text(llm.token_eos())
    bos = llm._model.token_get_text(llm.token_bos()) if llm.token_bos() >= 0 else ""
    messages: Any = chat_messages()  # role/content dicts: the shape of llama-cpp-python's message types
    formatted = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)(messages=messages)
    return list(llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=False, special=True))


class LlamaCppPythonStream:
    """llama-cpp-python's ``create_completion(stream=True)`` on the same prompt tokens."""

    name = "llama-cpp-python create_completion(stream=True)"
    logprobs: int | None = None

    def __init__(self, model: Path) -> None:
        self.llm = _load_llama(model)
        self.prompt = prompt_tokens(self.llm)

    def run(self, params: SamplingParams) -> DecodeRun:
        """One streamed completion; counts tokens from the context (chunks may merge tokens)."""
        greedy = params.is_greedy
        stream = self.llm.create_completion(
            self.prompt,
            max_tokens=N_GEN,
            stream=True,
            temperature=0.0 if greedy else params.temperature,
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=params.min_p,
            repeat_penalty=params.repeat_penalty,
            seed=params.seed,
            logprobs=self.logprobs,
        )
        first = last = 0.0
        for i, _chunk in enumerate(stream):
            last = time.perf_counter()
            if i == 0:
                first = last
        # The last sampled token is never evaluated: n_tokens = prompt + generated - 1.
        generated = self.llm.n_tokens - len(self.prompt) + 1
        return DecodeRun(tokens_per_s(first, last, generated), generated)


class LlamaCppPythonLogprobs(LlamaCppPythonStream):
    """The same with ``logprobs=10``: llama-cpp-python's way to get top-10 candidates per token.

    It needs ``logits_all=True`` (logits of every position kept, n_ctx x n_vocab floats).
    """

    name = "llama-cpp-python create_completion(stream=True, logprobs=10)"

    def __init__(self, model: Path) -> None:
        self.llm = _load_llama(model, logits_all=True)
        self.prompt = prompt_tokens(self.llm)
        self.logprobs = 10


class RawDecodeLoop:
    """``llama_decode`` of one token at a time through the bindings, nothing else per token.

    The prompt is evaluated first so the positions match the other contenders.
    """

    name = "raw llama_decode loop (bindings, no sampling)"

    def __init__(self, model: Path) -> None:
        self.llm = _load_llama(model)
        self.prompt = prompt_tokens(self.llm)

    def run(self, params: SamplingParams) -> DecodeRun:
        """Decode N_GEN tokens after the prompt; ``params`` are ignored (no sampling)."""
        import llama_cpp

        ctx = self.llm.ctx
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        self.llm.n_tokens = 0
        self.llm.eval(self.prompt)
        token = (llama_cpp.llama_token * 1)(self.prompt[-1])
        batch = llama_cpp.llama_batch_get_one(token, 1)
        decode = llama_cpp.llama_decode
        start = time.perf_counter()
        for _ in range(N_GEN):
            if decode(ctx, batch) != 0:
                raise RuntimeError("llama_decode failed")
        llama_cpp.llama_synchronize(ctx)
        elapsed = time.perf_counter() - start
        self.llm.n_tokens = 0
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        return DecodeRun(N_GEN / elapsed, N_GEN)


class OurEngine:
    """Our engine's ``stream_reply`` (live-parameter checks and top-N candidates on)."""

    def __init__(self, model: Path, top_n: int = 10, threads: int = THREADS) -> None:
        from tui.engine.llama_engine import load_engine
        from tui.engine.protocol import LoadConfig

        self.name = f"tokendial engine (top-{top_n} candidates, live params, {threads} threads)"
        self.engine = load_engine(
            LoadConfig(model_path=model, n_ctx=N_CTX, n_threads=threads, top_n=top_n, flash_attn=FLASH_ATTN)
        )

    def run(self, params: SamplingParams, messages: Sequence[Any] | None = None) -> DecodeRun:
        """One reply; times TokenEvents as the consumer receives them."""
        from tui.engine.events import ChatMessage, ReplyDone, StopKind, TokenEvent
        from tui.engine.live import LiveParams

        msgs = messages or [ChatMessage(m["role"], m["content"]) for m in chat_messages()]
        first = last = 0.0
        count = 0
        elapsed: list[float] = []
        done: ReplyDone | None = None
        for event in self.engine.stream_reply(msgs, LiveParams(params), threading.Event()):
            if isinstance(event, TokenEvent):
                last = time.perf_counter()
                if count == 0:
                    first = last
                count += 1
                elapsed.append(event.elapsed_ms)
            elif isinstance(event, ReplyDone):
                done = event
        if done is None or done.stop.kind is StopKind.ERROR:
            raise RuntimeError(f"engine reply failed: {done and done.stop.label()}")
        return DecodeRun(tokens_per_s(first, last, count), count, tuple(elapsed))


class OurEngineTopN:
    """Our engine with a different number of candidates (0 = capture off), same engine object."""

    def __init__(self, ours: OurEngine, top_n: int) -> None:
        self.ours = ours
        self.top_n = top_n
        self.name = f"tokendial engine (top-{top_n} candidates)"

    def run(self, params: SamplingParams) -> DecodeRun:
        """One reply with ``top_n`` candidates per token."""
        engine = self.ours.engine
        saved = engine.top_n
        engine.top_n = self.top_n
        try:
            return self.ours.run(params)
        finally:
            engine.top_n = saved
