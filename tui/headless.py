"""``tokendial generate``: one reply without the TUI, as text or as JSON lines.

Text mode streams the reply to stdout and writes the stop reason (and speed) to stderr, so
stdout holds only the reply. ``--json`` writes one JSON object per line: each engine event
(``{"event": "token", ...}``, ``prompt_progress``, ``prompt_trimmed``) and a final
``{"event": "done", ...}`` with the stop reason, timings and the model facts.
Model output is untrusted: when stdout is a terminal, control characters in the reply (escape
sequences that could recolour, clear or retitle the terminal, or write the clipboard with OSC 52)
are shown as visible stand-ins (``␛``); piped or redirected, the reply is written exactly. JSON
lines escape them in both cases (``\u001b``, also C1 controls and bidi overrides).
Exit status: 0 on any normal stop (end of sequence, max tokens, stop string, context full,
cancelled), 1 when the model cannot be loaded or the reply ends with an error, 2 for an empty prompt
or sampling settings the model can't use (a grammar llama.cpp can't parse, a JSON schema that can't
be converted, a logit bias for a token outside the vocabulary, a grammar that allows no token at
some step: the reply so far is printed, then the stop reason).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, TextIO

from tui.core.conversation import Conversation
from tui.core.loading import load_config
from tui.core.text import clean
from tui.engine.chain import is_dead_end
from tui.engine.events import (
    ChatMessage,
    EngineError,
    EngineEvent,
    PromptTrimmed,
    ReplyDone,
    StopKind,
    TokenEvent,
)
from tui.engine.live import LiveParams
from tui.engine.llama_engine import find_stop_string
from tui.engine.protocol import ChatEngine
from tui.headless_io import EXIT_FAILED, EXIT_OK, EXIT_USAGE, event_record, in_thread, is_terminal, json_line
from tui.library.advice import no_template_notice

if TYPE_CHECKING:
    from settings.config import Settings

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "event_record", "json_line", "open_engine", "run_generate"]


def open_engine(settings: Settings, *, top_n: int) -> ChatEngine:
    """The engine the settings choose: the local model, or a server backend (raises EngineError)."""
    if settings.backend == "local":
        from tui.engine.llama_engine import load_engine

        return load_engine(load_config(settings, top_n=top_n))
    from tui.engine.backends import open_server_engine, server_config

    return open_server_engine(server_config(settings, top_n=top_n))


def run_generate(
    settings: Settings,
    prompt: str,
    json_output: bool,
    *,
    raw: bool = False,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Generate one reply to ``prompt`` with ``settings`` (``raw``: continue the text as it is,
    no chat template); returns the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    if not prompt.strip():
        print("tokendial generate: the prompt is empty.", file=err)
        return EXIT_USAGE
    try:
        engine = open_engine(settings, top_n=settings.top_n if json_output else 0)
    except EngineError as exc:
        what = "load the model" if settings.backend == "local" else f"use the {settings.backend} backend"
        print(f"tokendial: cannot {what}: {exc.message}", file=err)
        if exc.hint:
            print(f"  {exc.hint}", file=err)
        return EXIT_FAILED
    try:
        check = getattr(engine, "params_problem", None)  # the local engine: its vocabulary, its parser
        problem = check(settings.sampling) if check is not None else None
        if problem is not None:
            print(f"tokendial: bad setting sampling.{problem[0]}: {problem[1]}", file=err)
            return EXIT_USAGE
        for warning in engine.info.warnings:
            print(f"tokendial: WARNING: {warning}", file=err)
        if not raw and (note := no_template_notice(engine.info, for_app=False)):
            print(f"tokendial: {note}", file=err)
        conversation = Conversation(LiveParams(settings.sampling), system_prompt=settings.system_prompt)
        conversation.add_prompt(prompt)
        messages = [ChatMessage("user", prompt)] if raw else conversation.messages()
        done = _stream(engine, messages, conversation.live, json_output, out, err, raw=raw)
    finally:
        engine.close()
    if done is not None and done.stop.kind is StopKind.ERROR and is_dead_end(done.stop.message):
        return EXIT_USAGE  # the grammar (or a ban) left no token: the settings, not the machine
    return EXIT_FAILED if done is None or done.stop.kind is StopKind.ERROR else EXIT_OK


def _stream(
    engine: ChatEngine,
    messages: Sequence[ChatMessage],
    live: LiveParams,
    json_output: bool,
    out: TextIO,
    err: TextIO,
    *,
    raw: bool = False,
) -> ReplyDone | None:
    """Run the reply in a worker thread so that Ctrl-C becomes a clean cancel."""

    def produce(cancel: threading.Event) -> Iterator[EngineEvent]:
        if raw:
            return iter(engine.stream_reply(messages, live, cancel, raw=True))
        return iter(engine.stream_reply(messages, live, cancel))

    items = in_thread(produce, name="tokendial-generate")
    try:
        return _consume(engine, items, live, json_output, out, err)
    finally:
        items.close()  # waits for the engine thread before anyone closes the engine


def _consume(
    engine: ChatEngine,
    events: Iterator[EngineEvent | BaseException],
    live: LiveParams,
    json_output: bool,
    out: TextIO,
    err: TextIO,
) -> ReplyDone | None:
    """Print the engine's events as they come; returns the ReplyDone (None if the engine failed)."""
    done: ReplyDone | None = None
    # Text mode holds back what could be the start of a stop string (the reply excludes it).
    hold = max((len(stop) for stop in live.params.stop), default=1) - 1
    streamed = ""
    printed = 0
    show = clean if is_terminal(out) else str
    for item in events:
        if isinstance(item, BaseException):
            print(f"tokendial: the engine failed: {type(item).__name__}: {item}", file=err)
            break
        if isinstance(item, ReplyDone):
            done = item
        if json_output:
            out.write(json_line(event_record(item, engine.info)) + "\n")
            out.flush()
        elif isinstance(item, TokenEvent):
            streamed += item.text
            safe = len(streamed) - hold
            found = find_stop_string(streamed, live.params.stop, max(0, printed - hold))
            if found is not None:
                safe = min(safe, found[0])
            if safe > printed:
                out.write(show(streamed[printed:safe]))
                out.flush()
                printed = safe
        elif isinstance(item, PromptTrimmed):
            if item.dropped_tokens:
                print(f"[dropped the text's first {item.dropped_tokens} tokens to fit the context]", file=err)
            else:
                print(f"[dropped the {item.dropped_messages} oldest messages to fit the context]", file=err)
    if done is not None and not json_output:
        out.write(show(done.text[printed:]) + "\n")
        out.flush()
        speed = f", {done.tokens_per_s:.1f} tok/s" if done.tokens_per_s else ""
        print(f"[{clean(done.stop.label())}] {done.generated} tokens{speed}", file=err)
    return done
