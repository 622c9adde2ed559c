"""The real engine: our own token loop on llama-cpp-python's low-level API.

Per token: read the live parameters (one attribute read), update the sampler chain only when
they changed (stages whose own settings did not change keep their state; see ``chain``), compute
the top-N candidates by raw logit with numpy (see ``sampling_math``), run llama.cpp's chain stage
by stage (which stage cut each candidate, the survivors of each, the probabilities after the
whole chain, the draw), decode the token's bytes incrementally as UTF-8, check the stop rules,
and evaluate the token.
"""

from __future__ import annotations

import codecs
import ctypes
import dataclasses
import math
import random
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from settings.sampling import SEED_MAX, SamplingParams
from tui.engine.chain import GrammarDeadEnd, SamplerChain, chain_specs, params_problem
from tui.engine.chat_format import ChatFormatter, ChatTemplateError, with_system_prompt
from tui.engine.events import (
    Candidate,
    ChatMessage,
    CutBy,
    EngineError,
    EngineEvent,
    ModelInfo,
    ModelLoadError,
    PromptProgress,
    PromptTrimmed,
    ReplyDone,
    StopKind,
    StopReason,
    TokenEvent,
)
from tui.engine.live import LiveParams
from tui.engine.model import LoadedModel, load_model
from tui.engine.protocol import LoadConfig
from tui.engine.reply_end import reply_done
from tui.engine.sampling_math import StepDistribution, chain_pool, step_candidates

PIECE_BUFFER_BYTES = 256
"""Token text buffer (llama-cpp-python's own 32-byte one drops long tokens)."""


class PromptTooLong(EngineError):
    """Even the last user message alone does not fit the context."""


class LlamaEngine:
    """A loaded GGUF model that streams chat replies token by token (see ``ChatEngine``)."""

    def __init__(self, loaded: LoadedModel, config: LoadConfig) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._llm: Any = loaded.llm
        self._info = loaded.info
        self._config = config
        self.formatter = ChatFormatter.for_model(
            loaded.chat_template, config.chat_template, bos_token=loaded.bos_text, eos_token=loaded.eos_text
        )
        self._info = dataclasses.replace(self._info, chat_template_label=self.formatter.label)
        self._bos_text = loaded.bos_text
        self._vocab = self._llm._model.vocab
        self._n_vocab = int(self._llm.n_vocab())
        self._n_ctx = int(self._llm.n_ctx())
        self.top_n = config.top_n
        """Candidates per TokenEvent; 0 switches candidate capture off (benchmarks)."""
        self.system_prompt: str | None = config.system_prompt
        """Prepended when the conversation has no system message."""
        self._buf = ctypes.create_string_buffer(PIECE_BUFFER_BYTES)
        self._logits_addr: int | None = None
        self._logits_view: np.ndarray = np.empty(0, dtype=np.float32)
        self._one_token = (llama_cpp.llama_token * 1)()
        # The batch of one token only points at _one_token: built once, reused by every decode.
        self._one_batch = llama_cpp.llama_batch_get_one(self._one_token, 1)
        # llama_get_logits_ith with the address as an int: no ctypes.cast each token
        self._logits_ith = _returning_address(llama_cpp.llama_get_logits_ith)
        self._bytes_cache: dict[int, bytes] = {}
        self._piece_cache: dict[int, str] = {}
        self._closed = False

    # -- the ChatEngine protocol ------------------------------------------------------------

    @property
    def info(self) -> ModelInfo:
        """Facts about the loaded model and where it runs."""
        return self._info

    @property
    def n_ctx(self) -> int:
        """The context size in use."""
        return self._n_ctx

    @property
    def cached_tokens(self) -> tuple[int, ...]:
        """The tokens whose keys/values are in the KV cache now (prompt + evaluated reply)."""
        return tuple(int(t) for t in self._llm.input_ids[: self._llm.n_tokens])

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` is (special tokens like ``<|im_end|>`` count as one)."""
        return len(self.tokenize(text))

    def tokenize(self, text: str, *, add_bos: bool = False) -> list[int]:
        """Token ids of ``text`` (special tokens parsed)."""
        tokens: list[int] = self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
        return tokens

    def format_prompt(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The prompt tokens for ``messages`` (system prompt added, chat template applied)."""
        text = self.formatter.render(with_system_prompt(messages, self.system_prompt))
        return self._prompt_tokens(text)

    def token_text(self, token_id: int) -> str:
        """A token's own text, special tokens rendered, partial UTF-8 as replacement characters."""
        text = self._piece_cache.get(token_id)
        if text is None:
            text = self._piece(token_id, special=True).decode("utf-8", errors="replace")
            self._piece_cache[token_id] = text
        return text

    def params_problem(self, params: SamplingParams) -> tuple[str, str] | None:
        """What this model can't use in ``params``, as (field, message): a token outside the
        vocabulary, a grammar that won't parse, a JSON schema that can't be converted; or None."""
        return params_problem(self._lib, self._vocab, self._n_vocab, params)

    def close(self) -> None:
        """Free the model and its context."""
        if not self._closed:
            self._closed = True
            self._llm.close()

    def stream_reply(
        self,
        messages: Sequence[ChatMessage],
        live: LiveParams,
        cancel: threading.Event,
        *,
        continue_from: Sequence[int] = (),
        raw: bool = False,
    ) -> Iterator[EngineEvent]:
        """Generate the assistant's reply; always ends with exactly one ReplyDone, never raises.

        ``continue_from``: reply tokens already fixed (branching). They are evaluated (reusing
        the KV cache) but not re-emitted; TokenEvent indexes, ``max_new_tokens`` and the final
        text/token_ids count the whole reply, these tokens included.
        ``raw``: text completion: the messages' texts joined are the prompt, as is (no chat
        template, no system prompt), and the reply continues it.
        """
        reply = _Reply(self, live, cancel, list(continue_from), raw=raw)
        try:
            yield from reply.run(messages)
        except Exception as exc:  # the promise: errors become a stop reason, never an exception
            message = exc.message if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
            reply.stop = StopReason(StopKind.ERROR, message=message, generated=len(reply.tokens))
        yield reply.done()

    # -- internals used by _Reply -----------------------------------------------------------

    def _prompt_tokens(self, text: str) -> list[int]:
        # The template may write the BOS text itself; then don't add another one.
        add_bos = not (self._bos_text and text.startswith(self._bos_text))
        return self.tokenize(text, add_bos=add_bos)

    def _piece(self, token_id: int, *, special: bool) -> bytes:
        n = self._lib.llama_token_to_piece(self._vocab, token_id, self._buf, PIECE_BUFFER_BYTES, 0, special)
        if n < 0:  # longer than the buffer (never for real vocabularies): ask again with room
            buf = ctypes.create_string_buffer(-n)
            n = self._lib.llama_token_to_piece(self._vocab, token_id, buf, -n, 0, special)
            return buf.raw[:n]
        return self._buf.raw[:n]

    def _token_bytes(self, token_id: int) -> bytes:
        """The bytes a token adds to the reply text (control tokens add nothing)."""
        data = self._bytes_cache.get(token_id)
        if data is None:
            data = self._piece(token_id, special=False)
            self._bytes_cache[token_id] = data
        return data

    def _logits(self) -> np.ndarray:
        """The last position's logits: a zero-copy view, valid until the next decode."""
        address = self._logits_ith(self._llm.ctx, -1)
        if not address:
            raise EngineError("llama.cpp returned no logits for the last position.")
        if address != self._logits_addr:  # the view is cached while llama.cpp keeps its buffer
            pointer = ctypes.cast(address, ctypes.POINTER(ctypes.c_float))
            self._logits_view = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))
            self._logits_addr = address
        return self._logits_view

    def _decode_one(self, token: int) -> None:
        """Evaluate one token at the next position (what ``Llama.eval`` does, minus its overhead)."""
        llm = self._llm
        n = llm.n_tokens
        self._one_token[0] = token
        status = self._lib.llama_decode(llm.ctx, self._one_batch)
        if status != 0:
            raise EngineError(
                f"llama.cpp could not evaluate the next token (llama_decode returned {status})."
            )
        llm.input_ids[n] = token
        llm.n_tokens = n + 1

    def _is_eog(self, token_id: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._vocab, token_id))

    def _fit(
        self, messages: Sequence[ChatMessage], extra: int, params: SamplingParams
    ) -> tuple[list[int], int]:
        """Prompt tokens for the conversation, dropping the oldest turns if it does not fit.

        Keeps the system prompt and the last message; wants room for ``extra`` fixed reply
        tokens plus min(max_new_tokens, n_ctx / 4) new ones. Returns (tokens, dropped).
        """
        msgs = with_system_prompt(messages, self.system_prompt)
        system = msgs[:1] if msgs and msgs[0].role == "system" else []
        body = msgs[len(system) :]
        reserve = min(params.max_new_tokens, self._n_ctx // 4)
        dropped = 0
        tokens = self._prompt_tokens(self.formatter.render(msgs))
        while len(tokens) + extra + reserve > self._n_ctx and len(body) > 1:
            body = body[1:]
            dropped += 1
            while len(body) > 1 and body[0].role != "user":
                body = body[1:]
                dropped += 1
            tokens = self._prompt_tokens(self.formatter.render([*system, *body]))
        if len(tokens) + extra + 1 > self._n_ctx:
            system_tokens = self.count_tokens(system[0].content) if system else 0
            if system_tokens * 2 > len(tokens):  # most of it is the system prompt: say so
                raise PromptTooLong(
                    f"The system prompt is too long for the context: it is {system_tokens} tokens of a "
                    f"{len(tokens) + extra}-token prompt, and the context holds {self._n_ctx} (n_ctx).",
                    "Shorten system_prompt or raise n_ctx.",
                )
            what = "The message is" if len(body) <= 1 else "The conversation is"
            raise PromptTooLong(
                f"{what} too long for the context: the prompt is {len(tokens) + extra} tokens "
                f"but the context holds {self._n_ctx} (n_ctx), with room needed for the reply.",
                "Shorten the message or raise n_ctx.",
            )
        return tokens, dropped

    def _fit_raw(
        self, messages: Sequence[ChatMessage], extra: int, params: SamplingParams
    ) -> tuple[list[int], int]:
        """Text completion: the joined texts as tokens (BOS as the model wants, special tokens as
        plain text); when too long, the oldest tokens are dropped. Returns (tokens, dropped)."""
        text = "".join(message.content for message in messages if message.role != "system")
        tokens: list[int] = self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        if not tokens:
            raise PromptTooLong("There is no text to continue.", "Write the start of a text first.")
        reserve = min(params.max_new_tokens, self._n_ctx // 4)
        room = self._n_ctx - extra - reserve
        if len(tokens) <= room:
            return tokens, 0
        if room < 1:
            raise PromptTooLong(
                f"The text is too long for the context: {len(tokens) + extra} tokens, and the context "
                f"holds {self._n_ctx} (n_ctx) with room needed for the continuation.",
                "Shorten the text or raise n_ctx.",
            )
        return tokens[len(tokens) - room :], len(tokens) - room


class _Reply:
    """The state of one reply being generated."""

    def __init__(
        self,
        engine: LlamaEngine,
        live: LiveParams,
        cancel: threading.Event,
        fixed: list[int],
        *,
        raw: bool = False,
    ) -> None:
        self.engine = engine
        self.raw = raw
        self.live = live
        self.cancel = cancel
        self.fixed = fixed
        self.tokens: list[int] = list(fixed)
        self.text = ""
        self.stop: StopReason | None = None
        self.versions: dict[int, SamplingParams] = {}
        self.seed = -1
        self.prompt_tokens = 0
        self.prompt_evaluated = 0
        self.prompt_ms = 0.0
        self.first_token_ms: float | None = None
        self.started = time.perf_counter()
        self.first_token_at: float | None = None
        self.ended_at: float | None = None
        self._chain: SamplerChain | None = None
        self._chain_params: SamplingParams | None = None
        self._text_before = 0

    def done(self) -> ReplyDone:
        """The final event."""
        return reply_done(self)

    def _end(self, kind: StopKind, **detail: Any) -> None:
        self.ended_at = time.perf_counter()
        self.stop = StopReason(kind, generated=len(self.tokens), **detail)

    def run(self, messages: Sequence[ChatMessage]) -> Iterator[EngineEvent]:
        engine, llm = self.engine, self.engine._llm
        version, params = self.live.snapshot()
        self.versions[version] = params
        self.seed = params.seed if params.seed >= 0 else random.SystemRandom().randint(0, SEED_MAX)

        fit = engine._fit_raw if self.raw else engine._fit
        try:
            prompt, dropped = fit(messages, len(self.fixed), params)
        except (PromptTooLong, ChatTemplateError) as exc:
            self._end(StopKind.ERROR, message=str(exc))
            return
        self.prompt_tokens = len(prompt)
        if dropped and self.raw:
            yield PromptTrimmed(0, len(prompt), engine.n_ctx, dropped_tokens=dropped)
        elif dropped:
            yield PromptTrimmed(dropped_messages=dropped, prompt_tokens=len(prompt), n_ctx=engine.n_ctx)

        # The reply text so far (fixed tokens of a branch), decoded incrementally.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = "".join(decoder.decode(engine._token_bytes(t)) for t in self.fixed)

        # KV-cache prefix reuse: evaluate only what follows the common prefix.
        full = prompt + self.fixed
        start = self._reuse_prefix(full)
        todo = full[start:]
        self.prompt_evaluated = len(todo)
        t0 = time.perf_counter()
        # The last token goes alone: the logits of the reply's first token then come from the
        # same kind of decode whether the prompt was cached or not (llama.cpp's batched and
        # single-token kernels differ slightly), so a seed reproduces its reply.
        size = max(1, int(llm.n_batch))
        head = todo[:-1]
        batches = [head[i : i + size] for i in range(0, len(head), size)] + [todo[-1:]]
        done = 0
        for chunk in batches:
            if self.cancel.is_set():
                self.prompt_ms = (time.perf_counter() - t0) * 1000.0
                self._end(StopKind.CANCELLED)
                return
            _eval(llm, chunk)
            done += len(chunk)
            yield PromptProgress(evaluated=done, total=len(todo), context=len(full))
        self.prompt_ms = (time.perf_counter() - t0) * 1000.0
        yield from self._loop(decoder)

    def _reuse_prefix(self, full: list[int]) -> int:
        """Keep the longest cached prefix of ``full`` (at least one token is always evaluated)."""
        llm = self.engine._llm
        cached = np.asarray(llm.input_ids[: llm.n_tokens])
        limit = min(len(cached), len(full) - 1)
        common = 0
        if limit > 0:
            diff = np.flatnonzero(cached[:limit] != np.asarray(full[:limit], dtype=cached.dtype))
            common = int(diff[0]) if diff.shape[0] else limit
        if not llm._ctx.kv_cache_seq_rm(-1, common, -1):  # some models can't cut their cache
            common = 0
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        llm.n_tokens = common
        return common

    def _loop(self, decoder: codecs.IncrementalDecoder) -> Iterator[EngineEvent]:
        self.open_chain()
        try:
            yield from self._tokens(decoder)
        finally:
            self.close_chain()

    def _tokens(self, decoder: codecs.IncrementalDecoder) -> Iterator[EngineEvent]:
        engine, llm = self.engine, self.engine._llm
        n_ctx = engine.n_ctx
        token_start = time.perf_counter()
        while True:
            current = self.begin_step()
            if current is None:
                return
            version, params = current
            event = self.take_token(version, params, engine._logits(), decoder, token_start)
            if event is None:
                return
            yield event
            if self.ended_after_token(params):
                return
            if llm.n_tokens >= n_ctx:
                self._end(StopKind.CONTEXT_FULL, limit=n_ctx)
                return
            token_start = time.perf_counter()
            engine._decode_one(event.token_id)

    # -- one step, shared by this loop and the batched one (tui.engine.batch) ------------------

    def open_chain(self) -> None:
        """Create this reply's sampler chain (before the first token)."""
        engine = self.engine
        self._chain = SamplerChain(engine._lib, engine._vocab, engine._n_vocab, engine.n_ctx)
        self._chain_params = None

    def close_chain(self) -> None:
        """Free the sampler chain."""
        if self._chain is not None:
            self._chain.close()
            self._chain = None

    def begin_step(self) -> tuple[int, SamplingParams] | None:
        """Before a token: the live (version, params), or None when the reply ended (cancel, cap)."""
        if self.cancel.is_set():
            self._end(StopKind.CANCELLED)
            return None
        version, params = self.live.snapshot()
        if version not in self.versions:
            self.versions[version] = params
        if len(self.tokens) >= params.max_new_tokens:
            self._end(StopKind.MAX_TOKENS, limit=params.max_new_tokens)
            return None
        return version, params

    def take_token(
        self,
        version: int,
        params: SamplingParams,
        logits: np.ndarray,
        decoder: codecs.IncrementalDecoder,
        token_start: float,
    ) -> TokenEvent | None:
        """Choose the next token from ``logits`` and add it to the reply; None when it ended (EOS, error)."""
        engine = self.engine
        picked = self._pick(params, logits)
        if picked is None:
            return None
        token, p_final, step = picked
        if engine._is_eog(token):
            self._end(StopKind.EOS, token_id=token, token_text=engine.token_text(token))
            return None
        event = self._event(token, p_final, version, step, logits, decoder, token_start)
        self.tokens.append(token)
        self._text_before = len(self.text)
        self.text += event.text
        now = time.perf_counter()
        if self.first_token_at is None:
            self.first_token_at = now
            self.first_token_ms = (now - self.started) * 1000.0
        return event

    def ended_after_token(self, params: SamplingParams) -> bool:
        """After a token made with ``params``: end the reply on one of their stop strings, the live
        cap or a cancel."""
        if params.stop:
            max_stop = max(len(s) for s in params.stop)
            found = find_stop_string(self.text, params.stop, max(0, self._text_before - max_stop + 1))
            if found is not None:
                at, which = found
                self.text = self.text[:at]
                self._end(StopKind.STOP_STRING, stop_string=which)
                return True
        version, params = self.live.snapshot()
        if len(self.tokens) >= params.max_new_tokens:
            if version not in self.versions:
                self.versions[version] = params
            self._end(StopKind.MAX_TOKENS, limit=params.max_new_tokens)
            return True
        if self.cancel.is_set():
            self._end(StopKind.CANCELLED)
            return True
        return False

    def _pick(
        self, params: SamplingParams, logits: np.ndarray
    ) -> tuple[int, float, StepDistribution | None] | None:
        """The next token, its final probability and the step's distribution (None without top-N);
        None when the chain could not go on (the reply then ended with an error)."""
        engine, chain, tokens = self.engine, self._chain, self.tokens
        assert chain is not None, "open_chain() first"
        if params is not self._chain_params:
            seed = params.seed if params.seed >= 0 else self.seed
            try:
                chain.update(chain_specs(params, seed=seed, n_ctx=engine.n_ctx), tokens)
            except EngineError as exc:
                self._end(StopKind.ERROR, message=str(exc))
                return None
            self._chain_params = params
        step = self._step(params, logits) if engine.top_n > 0 else None
        greedy_fast = params.is_greedy and len(chain.specs) == 1  # nothing but the arg-max
        if greedy_fast:  # the step's first candidate is the arg-max already (ties: lowest id)
            token = step.top_ids[0] if step is not None and step.top_ids else int(np.argmax(logits))
            p_final = 1.0
            if step is not None:
                step = _greedy_step(step, token)
            chain.accept(token)
            return token, p_final, step
        pool = None
        if chain.pool_allowed():
            pool = step.chain_pool if step is not None else None
            if pool is None:
                pool = chain_pool(
                    logits,
                    top_k=params.top_k,
                    history=tokens,
                    repeat_penalty=_any_penalty(params),
                    repeat_last_n=params.repeat_last_n,
                )
        watched = np.asarray(step.top_ids, dtype=np.intp) if step is not None else None
        try:
            result = chain.run(logits, pool, watched)
        except GrammarDeadEnd as exc:
            self._end(StopKind.ERROR, message=exc.message)
            return None
        chain.accept(result.token)
        if step is not None:
            step = step.with_outcome(result.p_final, result.cut_by, result.survivors)
        return result.token, result.p, step

    def _step(self, params: SamplingParams, logits: np.ndarray) -> StepDistribution:
        """Top-N candidates by raw logit, their raw probabilities and the entropy, for this step
        (what the chain did to them is filled in from the chain's own run)."""
        pool_k = params.top_k if not params.is_greedy and params.mirostat == 0 else 0
        return step_candidates(
            logits,
            top_n=self.engine.top_n,
            pool_k=max(pool_k, 0),
            repeat_penalty=_any_penalty(params),
            history=self.tokens,
            repeat_last_n=params.repeat_last_n,
        )

    def _event(
        self,
        token: int,
        p_final: float,
        version: int,
        step: StepDistribution | None,
        logits: np.ndarray,
        decoder: codecs.IncrementalDecoder,
        token_start: float,
    ) -> TokenEvent:
        engine = self.engine
        text = decoder.decode(engine._token_bytes(token))
        if step is not None:
            token_text = engine.token_text
            candidates = tuple(
                Candidate(tid, token_text(tid), logit, p_raw, p_fin, cut)
                for tid, logit, p_raw, p_fin, cut in zip(
                    step.top_ids,
                    step.top_logits,
                    step.top_p_raw,
                    step.top_p_final,
                    step.top_cut_by,
                    strict=True,
                )
            )
            p_raw = step.p_raw_of(float(logits[token]))
            entropy = step.entropy_bits
        else:
            candidates = ()
            p_raw = entropy = math.nan
        return TokenEvent(
            index=len(self.tokens),
            token_id=token,
            text=text,
            piece=engine.token_text(token),
            p_raw=p_raw,
            p_final=p_final,
            candidates=candidates,
            entropy=entropy,
            params_version=version,
            elapsed_ms=(time.perf_counter() - token_start) * 1000.0,
            stages=step.stages if step is not None else (),
        )


def _returning_address(function: Any) -> Any:
    """The same C function as a ctypes one whose pointer result comes back as an int (or None)."""
    address = ctypes.cast(function, ctypes.c_void_p).value
    assert address is not None, "a bound C function has an address"
    return ctypes.CFUNCTYPE(ctypes.c_void_p, *function.argtypes)(address)


def _any_penalty(params: SamplingParams) -> float:
    """A repeat penalty other than 1 whenever any penalty is on (so the top-k pool holds every
    penalised token; the value itself is not used for the draw)."""
    if params.repeat_penalty != 1.0:
        return params.repeat_penalty
    return 2.0 if params.frequency_penalty != 0.0 or params.presence_penalty != 0.0 else 1.0


def _greedy_step(step: StepDistribution, token: int) -> StepDistribution:
    """The step's candidates under a plain arg-max: the token kept, every other one cut."""
    return step.with_outcome(
        [1.0 if t == token else 0.0 for t in step.top_ids],
        [None if t == token else CutBy.GREEDY for t in step.top_ids],
        (("greedy", 1),),
    )


def _eval(llm: Any, tokens: Sequence[int]) -> None:
    """llm.eval with llama.cpp's failures turned into a clear EngineError."""
    try:
        llm.eval(tokens)
    except (RuntimeError, ValueError) as exc:
        raise EngineError(f"llama.cpp could not evaluate {len(tokens)} token(s): {exc}") from None


def find_stop_string(text: str, stops: Sequence[str], start: int = 0) -> tuple[int, str] | None:
    """The earliest stop string in ``text[start:]`` (ties: the longest), as (index, which)."""
    best: tuple[int, str] | None = None
    for stop in stops:
        at = text.find(stop, start)
        if at >= 0 and (best is None or at < best[0] or (at == best[0] and len(stop) > len(best[1]))):
            best = (at, stop)
    return best


def load_engine(config: LoadConfig) -> LlamaEngine:
    """Load the model in ``config`` (raises ModelLoadError with a clear message on failure)."""
    loaded = load_model(
        config.model_path,
        n_ctx=config.n_ctx,
        n_gpu_layers=config.n_gpu_layers,
        n_threads=config.n_threads,
        flash_attn=config.flash_attn,
    )
    try:
        return LlamaEngine(loaded, config)
    except ChatTemplateError as exc:
        loaded.llm.close()
        raise ModelLoadError(
            f"{config.model_path}: {exc.message}", "Set chat_template to override it."
        ) from None
