"""llama.cpp's own HTTP server through its native API, at the local engine's fidelity where it can.

Per reply: the server's chat template (``/apply-template``) and tokenizer (``/tokenize``) make the
prompt tokens, then ``/completion`` streams with ``n_probs`` = top_n (raw or post-sampler
probabilities, see ``ServerConfig.probs``), the resolved seed, our sampler chain in our order,
``cache_prompt`` for prefix reuse, ``return_tokens`` for the ids and ``return_progress`` for the
prompt's progress. Stop strings, the length cap and cancel are checked here per token (as the local
engine does); cancelling closes the connection, which ends the server's task.

A mid-reply parameter change can't reach a running request: the stream is dropped and a new request
sent with the prompt plus every token so far, which the server finds in its prompt cache, so only a
token or so is evaluated again (``Resume`` records how many, from the server's ``timings``).
"""

from __future__ import annotations

import codecs
import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from settings.sampling import SamplingParams
from tui.engine.backends.common import (
    UNKNOWN,
    UNKNOWN_TOKEN,
    ReplyState,
    Resume,
    ServerConfig,
    server_model_info,
    with_system,
)
from tui.engine.backends.http import (
    ServerError,
    SseStream,
    StreamEnded,
    StreamEvent,
    Waiting,
    make_client,
    request_json,
    short,
)
from tui.engine.backends.params import llama_server_sampling, unmapped_fields
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
    StopKind,
    TokenEvent,
)
from tui.engine.live import LiveParams
from tui.engine.llama_engine import find_stop_string

INFO_TIMEOUT_S = 30.0
TIMINGS_WAIT_POLLS = 20
"""After the last token, wait at most this many stream polls (~1 s) for the server's own timings."""


class LlamaServerEngine:
    """A model served by llama-server (see ``ChatEngine``)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.top_n = config.top_n
        self.system_prompt = config.system_prompt
        self._client = make_client(config.url, config.headers, INFO_TIMEOUT_S)
        try:
            props = request_json(self._client, "GET", "/props", "reading the server's /props")
            if not isinstance(props, Mapping):
                raise ServerError(f"{config.url}/props is not a llama-server /props answer")
            models = request_json(self._client, "GET", "/v1/models", "listing the server's models")
        except ServerError as exc:
            self._client.close()
            raise ModelLoadError(exc.message, exc.hint) from None
        entries = models.get("data") if isinstance(models, Mapping) else None
        entry: Mapping[str, Any] = entries[0] if isinstance(entries, list) and entries else {}
        names = {str(entry.get("id", ""))} | {str(a) for a in entry.get("aliases") or ()}
        if config.model and config.model not in names:
            self._client.close()
            raise ModelLoadError(
                f"the llama-server at {config.where} serves {entry.get('id', '?')!r}, not {config.model!r}",
                "Drop --server-model or name the served model.",
            )
        meta = entry.get("meta") or {}
        settings = props.get("default_generation_settings") or {}
        self._n_ctx = int(settings.get("n_ctx") or meta.get("n_ctx") or 0)
        self._eos_text = str(props.get("eos_token") or "")
        self._bos_text = str(props.get("bos_token") or "")
        self.build_info = str(props.get("build_info") or "")
        path = str(props.get("model_path") or entry.get("id") or "")
        self._info = server_model_info(
            config,
            name=str(props.get("model_alias") or entry.get("id") or path),
            path=path,
            n_ctx=self._n_ctx,
            n_ctx_train=int(meta.get("n_ctx_train") or 0),
            n_vocab=int(meta.get("n_vocab") or 0),
            n_params=meta.get("n_params"),
            file_size=int(meta.get("size") or 0),
            has_chat_template=bool(props.get("chat_template")),
            eos_text=self._eos_text,
        )
        self.last_resumes: list[Resume] = []
        """The resumes of the last reply (mid-reply changes), for the benchmark."""
        self.last_timings: dict[str, Any] = {}
        """The server's own ``timings`` for the last request of the last reply."""

    # -- the ChatEngine protocol ------------------------------------------------------------

    @property
    def info(self) -> ModelInfo:
        """What the server reports of its model."""
        return self._info

    @property
    def n_ctx(self) -> int:
        """The server's context per slot."""
        return self._n_ctx

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` is, by the server's tokenizer."""
        return len(self.tokenize(text))

    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]:
        """Token ids of ``text`` (special tokens parsed)."""
        body = {"content": text, "add_special": add_special, "parse_special": True}
        answer = request_json(self._client, "POST", "/tokenize", "tokenizing", body)
        return [int(t) for t in answer.get("tokens", [])]

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of ``tokens``."""
        answer = request_json(self._client, "POST", "/detokenize", "detokenizing", {"tokens": list(tokens)})
        return str(answer.get("content", ""))

    def render(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt text for ``messages`` by the server's own chat template."""
        body = {"messages": [{"role": m.role, "content": m.content} for m in messages]}
        answer = request_json(self._client, "POST", "/apply-template", "applying the chat template", body)
        return str(answer.get("prompt", ""))

    def format_prompt(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The prompt tokens for ``messages`` (system prompt added, the server's template)."""
        return self._prompt_tokens(self.render(with_system(messages, self.system_prompt)))

    def close(self) -> None:
        """Close the connection pool (the server keeps running)."""
        self._client.close()

    def stream_reply(
        self,
        messages: Sequence[ChatMessage],
        live: LiveParams,
        cancel: threading.Event,
        *,
        continue_from: Sequence[int] = (),
        raw: bool = False,
    ) -> Iterator[EngineEvent]:
        """Stream the reply; always ends with exactly one ReplyDone, never raises.

        ``raw``: text completion (no chat template, no system prompt; see ChatEngine)."""
        reply = _Reply(self, live, cancel, continue_from)
        reply.raw = raw
        try:
            yield from reply.run(messages)
        except Exception as exc:  # the protocol's promise: a stop reason, never an exception
            reply.fail(exc)
        finally:
            self.last_resumes = list(reply.resumes)
            self.last_timings = dict(reply.server_timings)
        yield reply.done()

    # -- internals --------------------------------------------------------------------------

    def _prompt_tokens(self, text: str) -> list[int]:
        add_special = not (self._bos_text and text.startswith(self._bos_text))
        return self.tokenize(text, add_special=add_special)

    def fit(
        self, messages: Sequence[ChatMessage], extra: int, params: SamplingParams
    ) -> tuple[list[int], int]:
        """Prompt tokens, dropping the oldest turns until prompt + reply room fit the server's context."""
        msgs = with_system(messages, self.system_prompt)
        system = msgs[:1] if msgs and msgs[0].role == "system" else []
        body = msgs[len(system) :]
        reserve = min(params.max_new_tokens, self._n_ctx // 4) if self._n_ctx else 0
        tokens = self._prompt_tokens(self.render(msgs))
        dropped = 0
        while self._n_ctx and len(tokens) + extra + reserve > self._n_ctx and len(body) > 1:
            body = body[1:]
            dropped += 1
            while len(body) > 1 and body[0].role != "user":
                body = body[1:]
                dropped += 1
            tokens = self._prompt_tokens(self.render([*system, *body]))
        if self._n_ctx and len(tokens) + extra + 1 > self._n_ctx:
            raise EngineError(
                f"The conversation is too long for the server's context: the prompt is "
                f"{len(tokens) + extra} tokens but a slot holds {self._n_ctx}.",
                "Shorten the message or start the server with a larger --ctx-size.",
            )
        return tokens, dropped

    def completion_body(
        self, prompt: list[int], params: SamplingParams, seed: int, n_predict: int
    ) -> dict[str, Any]:
        """The /completion request for one stretch of a reply."""
        raw = params.is_greedy or self.config.probs == "raw"
        return {
            "prompt": prompt,
            "stream": True,
            "n_predict": max(1, n_predict),
            "n_probs": self.top_n,
            "post_sampling_probs": not raw,
            "cache_prompt": True,
            "return_tokens": True,
            "return_progress": True,
            **llama_server_sampling(params, seed, self._n_ctx or 2048),
        }


class _Resume(Exception):
    """Internal: the parameters changed mid-stream; ask again from the tokens so far."""


class _Reply(ReplyState):
    """One reply over llama-server: possibly several requests (one per mid-reply change)."""

    def __init__(
        self, engine: LlamaServerEngine, live: LiveParams, cancel: threading.Event, fixed: Sequence[int]
    ) -> None:
        super().__init__(live, cancel, fixed)
        self.engine = engine
        self.fixed = list(fixed)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.requests = 0
        self.changed_at: float | None = None
        self.raw = False

    def run(self, messages: Sequence[ChatMessage]) -> Iterator[EngineEvent]:
        engine = self.engine
        if self.raw:  # text completion: the contents as plain text, the server's BOS first
            prompt, dropped = engine.tokenize("".join(m.content for m in messages), add_special=True), 0
        else:
            prompt, dropped = engine.fit(messages, len(self.fixed), self.params)
        self.prompt_tokens = len(prompt)
        if dropped:
            yield PromptTrimmed(dropped_messages=dropped, prompt_tokens=len(prompt), n_ctx=engine.n_ctx)
        if self.fixed:
            self.text = engine.detokenize(self.fixed)
        ignored = unmapped_fields(self.params)
        if ignored:
            raise EngineError(f"llama-server backend: no mapping for {', '.join(ignored)} yet")
        yield PromptProgress(evaluated=0, total=len(prompt))  # shown while the server is silent
        while self.stop is None:
            if self.cancel.is_set():
                self.end(StopKind.CANCELLED)
                return
            if len(self.tokens) >= self.params.max_new_tokens:
                self.end(StopKind.MAX_TOKENS, limit=self.params.max_new_tokens)
                return
            # A token the server did not stream (see _stream) has no id: then the server tokenizes the text.
            so_far = self.tokens if UNKNOWN_TOKEN not in self.tokens else engine.tokenize(self.text)
            body = engine.completion_body(
                prompt + so_far,
                self.params,
                self.seed_for(self.requests),
                self.params.max_new_tokens - len(self.tokens),
            )
            self.requests += 1
            try:
                yield from self._stream(body)
            except _Resume:
                continue

    def _stream(self, body: dict[str, Any]) -> Iterator[EngineEvent]:
        engine = self.engine
        client = make_client(engine.config.url, engine.config.headers, engine.config.read_timeout_s)
        stream = SseStream(client, "/completion", body, "llama-server /completion")
        sent_sampling = llama_server_sampling(self.params, 0)
        held: TokenEvent | None = None  # a token without text: maybe the end-of-generation token
        held_id = 0
        resumed_from = len(self.tokens)
        progress_seen: tuple[int, int] | None = None  # (cached, processed) of the last progress event
        prompt_started = time.perf_counter()
        items = stream.items()
        try:
            for item in items:
                if self.cancel.is_set():
                    self.end(StopKind.CANCELLED)
                    return
                version, params = self.live.snapshot()
                if version != self.version:
                    self.note(version, params)
                    if llama_server_sampling(params, 0) != sent_sampling:
                        self.changed_at = time.perf_counter()
                        raise _Resume
                if len(self.tokens) >= self.params.max_new_tokens:
                    self.end(StopKind.MAX_TOKENS, limit=self.params.max_new_tokens)
                    return
                if isinstance(item, Waiting):
                    continue
                if isinstance(item, StreamEnded):
                    self._ended_early(item, held)
                    return
                data = item.data
                if not isinstance(data, Mapping):
                    raise ServerError(f"llama-server sent a malformed stream event: {short(item.raw, 120)!r}")
                if "error" in data:
                    error = data["error"]
                    message = error.get("message") if isinstance(error, Mapping) else error
                    raise ServerError(f"llama-server: {short(str(message))}")
                progress = data.get("prompt_progress")
                if isinstance(progress, Mapping):
                    cached = int(progress.get("cache", 0))
                    progress_seen = (cached, int(progress.get("processed", 0)))
                    if self.requests > 1:
                        continue  # a resume's few tokens: no progress bar
                    yield PromptProgress(
                        evaluated=max(0, int(progress.get("processed", 0)) - cached),
                        total=max(0, int(progress.get("total", 0)) - cached),
                    )
                    continue
                tokens = data.get("tokens") or []
                if tokens:
                    if held is not None:
                        yield from self._emit(held, held_id)
                        held = None
                        if self.stop is not None:
                            return
                    # A token that ends inside a UTF-8 character is not streamed (the next one carries
                    # the text): keep the count right with a token we know nothing about.
                    streamed = len(self.tokens) - resumed_from + 1
                    for _ in range(int(data.get("tokens_predicted") or streamed) - streamed):
                        yield from self._emit(self._unknown_token(), UNKNOWN_TOKEN)
                        if self.stop is not None:
                            return
                    event = self._token_event(data, int(tokens[-1]))
                    if self.changed_at is not None:
                        self._note_resume(resumed_from, progress_seen)
                    elif self.requests == 1 and progress_seen is not None and not self.prompt_evaluated:
                        self.prompt_evaluated = progress_seen[1] - progress_seen[0]
                        self.prompt_ms = (time.perf_counter() - prompt_started) * 1000.0
                    if event.text == "" and not data.get("content"):
                        held, held_id = event, int(tokens[-1])
                    else:
                        yield from self._emit(event, int(tokens[-1]))
                        if self.stop is not None:
                            at_limit = len(self.tokens) - resumed_from >= body["n_predict"]
                            if self.stop.kind is StopKind.MAX_TOKENS and at_limit:
                                self._await_timings(items)  # the server stops here too
                            return
                if data.get("stop") is True:
                    self.prompt_ms = self.prompt_ms or (time.perf_counter() - prompt_started) * 1000.0
                    yield from self._final(data, held, held_id)
                    return
        finally:
            stream.close()

    def _note_resume(self, at: int, progress: tuple[int, int] | None) -> None:
        """The first token after a resume: record what the new request cost."""
        assert self.changed_at is not None
        added = (time.perf_counter() - self.changed_at) * 1000.0
        cached, processed = progress if progress is not None else (0, 0)
        self.resumes.append(Resume(at, reevaluated=max(0, processed - cached), cached=cached, added_ms=added))
        self.changed_at = None

    def _token_event(self, data: Mapping[str, Any], token_id: int) -> TokenEvent:
        probs = data.get("completion_probabilities") or [{}]
        entry: Mapping[str, Any] = probs[0] if isinstance(probs[0], Mapping) else {}
        post = "top_probs" in entry or "prob" in entry
        raw_list = entry.get("top_probs" if post else "top_logprobs") or []
        greedy = self.params.is_greedy
        candidates: list[Candidate] = []
        for cand in raw_list:
            if not isinstance(cand, Mapping):
                continue
            p = float(cand["prob"]) if post else math.exp(float(cand.get("logprob", -math.inf)))
            cid = int(cand.get("id", -1))
            if post:
                candidates.append(Candidate(cid, str(cand.get("token", "")), UNKNOWN, UNKNOWN, p, None))
            elif greedy:
                chosen = cid == token_id
                cut = None if chosen else CutBy.GREEDY
                candidates.append(Candidate(cid, str(cand.get("token", "")), UNKNOWN, p, float(chosen), cut))
            else:
                candidates.append(Candidate(cid, str(cand.get("token", "")), UNKNOWN, p, UNKNOWN, None))
        if "prob" in entry:
            p_raw, p_final = UNKNOWN, float(entry["prob"])
        elif "logprob" in entry:
            p_raw = math.exp(float(entry["logprob"]))
            p_final = 1.0 if greedy else UNKNOWN
        else:  # the server ignored n_probs
            p_raw = p_final = UNKNOWN
        content = str(data.get("content", ""))
        return TokenEvent(
            index=len(self.tokens),
            token_id=token_id,
            text=content,
            piece=str(entry.get("token", content)),
            p_raw=p_raw,
            p_final=p_final,
            candidates=tuple(candidates),
            entropy=UNKNOWN,
            params_version=self.version,
            elapsed_ms=0.0,
        )

    def _unknown_token(self) -> TokenEvent:
        return TokenEvent(
            index=len(self.tokens),
            token_id=UNKNOWN_TOKEN,
            text="",
            piece="",
            p_raw=UNKNOWN,
            p_final=UNKNOWN,
            candidates=(),
            entropy=UNKNOWN,
            params_version=self.version,
            elapsed_ms=0.0,
        )

    def _emit(self, event: TokenEvent, token_id: int) -> Iterator[EngineEvent]:
        event = self.token_arrived(event)
        self.tokens.append(token_id)
        previous = len(self.text)
        self.text += event.text
        yield event
        stops = self.params.stop
        if stops:
            longest = max(len(s) for s in stops)
            found = find_stop_string(self.text, stops, max(0, previous - longest + 1))
            if found is not None:
                at, which = found
                self.text = self.text[:at]
                self.end(StopKind.STOP_STRING, stop_string=which)
                return
        if len(self.tokens) >= self.params.max_new_tokens:
            self.end(StopKind.MAX_TOKENS, limit=self.params.max_new_tokens)

    def _await_timings(self, items: Iterator[StreamEvent | StreamEnded | Waiting]) -> None:
        """The reply reached max_new_tokens where the server's n_predict ends too: its final event
        (with its own ``timings``) comes right after; wait for it briefly (Esc still cancels)."""
        for waits, item in enumerate(items):
            if self.cancel.is_set() or waits > TIMINGS_WAIT_POLLS or isinstance(item, StreamEnded):
                return
            data = item.data if isinstance(item, StreamEvent) else None
            if isinstance(data, Mapping) and data.get("stop") is True:
                self._take_timings(data)
                return

    def _take_timings(self, data: Mapping[str, Any]) -> None:
        timings = data.get("timings")
        if isinstance(timings, Mapping):
            self.server_timings = dict(timings)

    def _final(self, data: Mapping[str, Any], held: TokenEvent | None, held_id: int) -> Iterator[EngineEvent]:
        self._take_timings(data)
        timings = self.server_timings
        if timings and self.requests == 1:
            self.prompt_evaluated = int(timings.get("prompt_n", self.prompt_evaluated))
            self.prompt_ms = float(timings.get("prompt_ms", self.prompt_ms))
        stop_type = str(data.get("stop_type", ""))
        if stop_type == "eos":
            token_id = held_id if held is not None else None
            self.end(StopKind.EOS, token_id=token_id, token_text=self.engine._info.eos_text or "")
            return
        if held is not None:
            yield from self._emit(held, held_id)
            if self.stop is not None:
                return
        if stop_type == "word":
            self.end(StopKind.STOP_STRING, stop_string=str(data.get("stopping_word", "")))
        elif stop_type == "limit":
            if data.get("truncated") or (self.engine.n_ctx and self._context_used(data) >= self.engine.n_ctx):
                self.end(StopKind.CONTEXT_FULL, limit=self.engine.n_ctx)
            elif len(self.tokens) < self.params.max_new_tokens:
                # The server's own cap (its --n-predict) or a raised max_new_tokens: go on.
                if int(data.get("tokens_predicted", 0)) == 0:
                    self.end(StopKind.ERROR, message="llama-server stopped at its limit before any token")
                return
            else:
                self.end(StopKind.MAX_TOKENS, limit=self.params.max_new_tokens)
        else:
            self.end(StopKind.ERROR, message=f"llama-server ended the reply with stop_type {stop_type!r}")

    def _context_used(self, data: Mapping[str, Any]) -> int:
        return int(data.get("tokens_cached") or 0) + 1

    def _ended_early(self, item: StreamEnded, held: TokenEvent | None) -> None:
        if item.error is not None:
            cause = item.error.message
        else:
            cause = "the server closed the stream without a final event"
        if self.tokens or held is not None:
            cause += f" (after {len(self.tokens)} tokens; the partial reply is kept)"
        raise ServerError(cause)
