"""Any OpenAI-compatible chat-completions server (vLLM, Ollama, llama-cpp-python's, llama-server's /v1).

Streams ``/v1/chat/completions`` with ``logprobs`` and ``top_logprobs`` (capped at
``TOP_LOGPROBS_MAX``, the usual server limit). Such a server reports less than llama.cpp does, and
what it does not say stays unknown (NaN / -1), never guessed:

* token ids: not sent (-1); the text and its bytes are;
* probabilities: the server's logprobs are taken as p at T=1 (vLLM and llama.cpp report them before
  sampling); the probability after the samplers is unknown, and so are logits and entropy;
* why it stopped: ``length`` is the max-new-tokens cap; ``stop`` is the end of the sequence (which
  token, the server does not say) unless vLLM's ``stop_reason`` names a stop string or token; our
  own stop strings are matched here, per token, so they are always known exactly;
* a mid-reply change of a sampler can't reach the running request (there is no resume without
  token ids): it applies to the next reply, and the tokens keep the version that made them.
  Max new tokens and stop strings do apply at once (they are checked here).
"""

from __future__ import annotations

import codecs
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tui.engine.backends.common import (
    UNKNOWN,
    UNKNOWN_TOKEN,
    ReplyState,
    ServerConfig,
    server_model_info,
    with_system,
)
from tui.engine.backends.http import (
    ServerError,
    SseStream,
    StreamEnded,
    Waiting,
    make_client,
    request_json,
    short,
)
from tui.engine.backends.params import openai_sampling
from tui.engine.events import (
    Candidate,
    ChatMessage,
    EngineEvent,
    ModelInfo,
    ModelLoadError,
    PromptProgress,
    StopKind,
    TokenEvent,
)
from tui.engine.live import LiveParams
from tui.engine.llama_engine import find_stop_string

TOP_LOGPROBS_MAX = 20
"""OpenAI's own cap on top_logprobs (vLLM and llama.cpp allow more; 20 is safe everywhere)."""
INFO_TIMEOUT_S = 30.0
CHARS_PER_TOKEN = 4
"""Only when the server can't count tokens: an estimate, and the model facts say so."""


def api_root(url: str) -> tuple[str, str]:
    """(server root, OpenAI API base) for a URL given with or without its ``/v1``."""
    base = url.rstrip("/")
    if base.endswith("/v1"):
        return base[: -len("/v1")], base
    return base, base + "/v1"


class OpenAIEngine:
    """A model behind an OpenAI-compatible server (see ``ChatEngine``)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.system_prompt = config.system_prompt
        self.top_logprobs = min(config.top_n, TOP_LOGPROBS_MAX)
        self._root, self._api = api_root(config.url)
        self._client = make_client(self._api, config.headers, INFO_TIMEOUT_S)
        try:
            listed = request_json(self._client, "GET", "/models", "listing the server's models")
        except ServerError as exc:
            self._client.close()
            raise ModelLoadError(exc.message, exc.hint) from None
        entries = listed.get("data") if isinstance(listed, Mapping) else None
        ids = [str(e.get("id")) for e in entries or () if isinstance(e, Mapping) and e.get("id")]
        if config.model is not None and ids and config.model not in ids:
            self._client.close()
            raise ModelLoadError(
                f"the server at {config.where} has no model {config.model!r}; it has: {', '.join(ids[:8])}",
                "Pass one of them with --server-model.",
            )
        if config.model is None and not ids:
            self._client.close()
            raise ModelLoadError(f"the server at {config.where} lists no models", "Pass --server-model.")
        self.model = config.model or ids[0]
        entry: Mapping[str, Any] = next(
            (e for e in entries or () if isinstance(e, Mapping) and e.get("id") == self.model), {}
        )
        found_meta = entry.get("meta")
        meta: Mapping[str, Any] = found_meta if isinstance(found_meta, Mapping) else {}
        self._tokenizer = self._find_tokenizer()
        warnings = () if self._tokenizer else ("token counts are estimates: the server has no /tokenize",)
        self._info = server_model_info(
            config,
            name=self.model,
            n_ctx=int(meta.get("n_ctx") or entry.get("max_model_len") or 0),
            n_ctx_train=int(meta.get("n_ctx_train") or 0),
            n_vocab=int(meta.get("n_vocab") or 0),
            n_params=meta.get("n_params"),
            file_size=int(meta.get("size") or 0),
            warnings=warnings,
        )

    @property
    def info(self) -> ModelInfo:
        """What the server reports of its model (little: its name, sometimes the context)."""
        return self._info

    def close(self) -> None:
        """Close the connection pool (the server keeps running)."""
        self._client.close()

    # -- token counts -----------------------------------------------------------------------

    def _find_tokenizer(self) -> str | None:
        """Which /tokenize dialect the server speaks: "llama.cpp", "vllm", or None."""
        for dialect in ("llama.cpp", "vllm"):
            try:
                self._tokenize(dialect, "hi")
            except (ServerError, ValueError, TypeError, KeyError):
                continue
            return dialect
        return None

    def _tokenize(self, dialect: str, text: str) -> int:
        if dialect == "llama.cpp":
            body: dict[str, Any] = {"content": text, "add_special": False, "parse_special": True}
        else:
            body = {"model": self.model, "prompt": text, "add_special_tokens": False}
        with make_client(self._root, self.config.headers, INFO_TIMEOUT_S) as client:
            answer = request_json(client, "POST", "/tokenize", "tokenizing", body)
        return len(answer["tokens"])

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` is: the server's count, or an estimate (see ``info.warnings``)."""
        if self._tokenizer:
            return self._tokenize(self._tokenizer, text)
        return max(1, math.ceil(len(text) / CHARS_PER_TOKEN)) if text else 0

    # -- replies ----------------------------------------------------------------------------

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
        reply = _Reply(live, cancel)
        try:
            if continue_from:
                raise ServerError("an OpenAI-compatible server can't continue from given tokens (branching)")
            if raw:
                raise ServerError("text completion is not available over the openai backend (chat only)")
            yield from reply.run(self, messages)
        except Exception as exc:
            reply.fail(exc)
        yield reply.done()

    def request_body(self, messages: Sequence[ChatMessage], reply: ReplyState) -> dict[str, Any]:
        """The chat-completions request."""
        msgs = with_system(messages, self.system_prompt)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in msgs],
            "stream": True,
            "max_tokens": reply.params.max_new_tokens,
            "stream_options": {"include_usage": True},
            **openai_sampling(reply.params, reply.seed_for(0), extensions=self.config.openai_extensions),
        }
        if self.top_logprobs > 0:
            body["logprobs"] = True
            body["top_logprobs"] = self.top_logprobs
        return body


class _Reply(ReplyState):
    """One reply over chat completions."""

    def __init__(self, live: LiveParams, cancel: threading.Event) -> None:
        super().__init__(live, cancel, ())
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.finish: tuple[str, Any] | None = None

    def run(self, engine: OpenAIEngine, messages: Sequence[ChatMessage]) -> Iterator[EngineEvent]:
        body = engine.request_body(messages, self)
        sent_sampling = openai_sampling(self.params, 0, extensions=True)
        client = make_client(engine._api, engine.config.headers, engine.config.read_timeout_s)
        stream = SseStream(client, "/chat/completions", body, "chat completions")
        yield PromptProgress(evaluated=0, total=0)
        try:
            for item in stream.items():
                if self.cancel.is_set():
                    self.end(StopKind.CANCELLED)
                    return
                version, params = self.live.snapshot()
                if version not in self.versions:
                    if openai_sampling(params, 0, extensions=True) == sent_sampling:
                        self.note(version, params)  # only the cap or stop strings changed: in force now
                    else:  # the samplers can't change mid-request; the cap and stop strings can
                        self.versions[version] = params
                        self.params = self.params.model_copy(
                            update={"max_new_tokens": params.max_new_tokens, "stop": params.stop}
                        )
                if len(self.tokens) >= self.params.max_new_tokens:
                    self.end(StopKind.MAX_TOKENS, limit=self.params.max_new_tokens)
                    return
                if isinstance(item, Waiting):
                    continue
                if isinstance(item, StreamEnded):
                    self._ended(item)
                    return
                if item.raw.strip() == "[DONE]":
                    self._finished()
                    return
                data = item.data
                if not isinstance(data, Mapping):
                    raise ServerError(f"the server sent a malformed stream event: {short(item.raw, 120)!r}")
                if "error" in data:
                    error = data["error"]
                    message = error.get("message") if isinstance(error, Mapping) else error
                    raise ServerError(f"the server: {short(str(message))}")
                choices = data.get("choices")
                if not isinstance(choices, list):
                    raise ServerError(f"the server sent an event without choices: {short(item.raw, 120)!r}")
                self._usage(data.get("usage"))
                if not choices:
                    continue  # the usage chunk
                choice = choices[0]
                if not isinstance(choice, Mapping):
                    raise ServerError(f"the server sent a malformed choice: {short(item.raw, 120)!r}")
                yield from self._tokens(choice)
                if self.stop is not None:
                    return
                if choice.get("finish_reason"):
                    self.finish = (str(choice["finish_reason"]), choice.get("stop_reason"))
                    timings = data.get("timings")
                    if isinstance(timings, Mapping):
                        self.server_timings = dict(timings)
        finally:
            stream.close()

    def _usage(self, usage: Any) -> None:
        """The prompt's size and what the server's cache saved, when it reports usage."""
        if not isinstance(usage, Mapping):
            return
        self.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        details = usage.get("prompt_tokens_details")
        cached = int(details.get("cached_tokens") or 0) if isinstance(details, Mapping) else 0
        self.prompt_evaluated = max(0, self.prompt_tokens - cached)

    def _tokens(self, choice: Mapping[str, Any]) -> Iterator[EngineEvent]:
        delta = choice.get("delta") or {}
        content = str(delta.get("content") or "") if isinstance(delta, Mapping) else ""
        logprobs = choice.get("logprobs")
        entries = logprobs.get("content") if isinstance(logprobs, Mapping) else None
        if isinstance(entries, list) and entries:
            for entry in entries:
                if isinstance(entry, Mapping):
                    yield from self._emit(self._event_from_logprob(entry))
                    if self.stop is not None:
                        return
        elif content:  # the server ignored logprobs: one event per chunk, nothing known about it
            yield from self._emit(self._plain_event(content))

    def _text_of(self, entry: Mapping[str, Any]) -> str:
        raw = entry.get("bytes")
        if isinstance(raw, list) and all(isinstance(b, int) for b in raw):
            return self.decoder.decode(bytes(raw))
        return str(entry.get("token", ""))

    def _event_from_logprob(self, entry: Mapping[str, Any]) -> TokenEvent:
        candidates = tuple(
            Candidate(UNKNOWN_TOKEN, str(c.get("token", "")), UNKNOWN, _exp(c.get("logprob")), UNKNOWN, None)
            for c in entry.get("top_logprobs") or ()
            if isinstance(c, Mapping)
        )
        return TokenEvent(
            index=len(self.tokens),
            token_id=UNKNOWN_TOKEN,
            text=self._text_of(entry),
            piece=str(entry.get("token", "")),
            p_raw=_exp(entry.get("logprob")),
            p_final=UNKNOWN,
            candidates=candidates,
            entropy=UNKNOWN,
            params_version=self.version,
            elapsed_ms=0.0,
        )

    def _plain_event(self, content: str) -> TokenEvent:
        return TokenEvent(
            index=len(self.tokens),
            token_id=UNKNOWN_TOKEN,
            text=content,
            piece=content,
            p_raw=UNKNOWN,
            p_final=UNKNOWN,
            candidates=(),
            entropy=UNKNOWN,
            params_version=self.version,
            elapsed_ms=0.0,
        )

    def _emit(self, event: TokenEvent) -> Iterator[EngineEvent]:
        event = self.token_arrived(event)
        self.tokens.append(event.token_id)
        previous = len(self.text)
        self.text += event.text
        yield event
        stops = self.params.stop
        if stops:
            longest = max(len(s) for s in stops)
            found = find_stop_string(self.text, stops, max(0, previous - longest + 1))
            if found is not None:
                self.text = self.text[: found[0]]
                self.end(StopKind.STOP_STRING, stop_string=found[1])
                return
        if len(self.tokens) >= self.params.max_new_tokens:
            self.end(StopKind.MAX_TOKENS, limit=self.params.max_new_tokens)

    def _finished(self) -> None:
        """Map the finish_reason (vLLM's stop_reason too) to our stop reasons."""
        if self.finish is None:
            raise ServerError("the stream ended ([DONE]) without a finish_reason")
        reason, stop_reason = self.finish
        if reason == "length":
            self.end(StopKind.MAX_TOKENS, limit=self.params.max_new_tokens)
        elif reason == "stop" and isinstance(stop_reason, str) and stop_reason:
            self.end(StopKind.STOP_STRING, stop_string=stop_reason)
        elif reason == "stop" and isinstance(stop_reason, int) and not isinstance(stop_reason, bool):
            self.end(
                StopKind.EOS, token_id=stop_reason, token_text=None, message="a stop token of the server"
            )
        elif reason == "stop":
            self.end(StopKind.EOS, token_text=None, message="which token: not reported by the server")
        elif reason == "content_filter":
            self.end(StopKind.ERROR, message="the server's content filter ended the reply")
        else:
            self.end(StopKind.ERROR, message=f"the server ended the reply with finish_reason {reason!r}")

    def _ended(self, item: StreamEnded) -> None:
        if item.error is None and self.finish is not None:
            self._finished()  # some servers end without [DONE]
            return
        cause = item.error.message if item.error else "the server closed the stream without a finish_reason"
        if self.tokens:
            cause += f" (after {len(self.tokens)} tokens; the partial reply is kept)"
        raise ServerError(cause)


def _exp(logprob: Any) -> float:
    try:
        return math.exp(float(logprob))
    except (TypeError, ValueError, OverflowError):
        return UNKNOWN
