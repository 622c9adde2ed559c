"""``tokendial compare``: one prompt, several parameter sets in one batch, without the TUI.

Text mode prints each column (its parameters, its reply, why it stopped and its speed), then
where the columns parted and the batch's numbers. ``--json`` writes one JSON object per line:
``compare_started``, ``token`` and ``done`` events each with a ``column`` id (from 0), and a final
``compare_done`` with every column's parameters and stop reason and the parting point.
Exit status: 0 when every column stopped normally, 1 when the model cannot be loaded or a
column ended with an error, 2 for an empty prompt, an invalid parameter set or columns that
don't fit the context (named, and nothing starts).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from tui.core.conversation import Conversation
from tui.core.loading import load_config
from tui.core.text import clean
from tui.engine.batch import (
    BatchDecoder,
    ColumnDone,
    ColumnToken,
    CompareDone,
    CompareEvent,
    CompareStarted,
)
from tui.engine.events import ChatMessage, EngineError, ModelInfo, PromptProgress, StopKind
from tui.engine.live import LiveParams
from tui.engine.param_sets import ParamSetError, describe, parse_param_sets
from tui.headless_io import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    event_record,
    in_thread,
    is_terminal,
    json_line,
    plain,
)

if TYPE_CHECKING:
    from settings.config import Settings
    from settings.sampling import SamplingParams


def run_compare(
    settings: Settings,
    prompt: str,
    sets: Sequence[str],
    json_output: bool,
    *,
    view: bool = False,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``prompt`` once per parameter set in ``sets``, all in one batch; returns the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    if not prompt.strip():
        print("tokendial compare: the prompt is empty.", file=err)
        return EXIT_USAGE
    if len(sets) < 2 and not (view and not sets):  # the view can start from its chooser
        print(
            "tokendial compare: give at least two parameter sets (--set KEY=VALUE[,KEY=VALUE] each).",
            file=err,
        )
        return EXIT_USAGE
    try:
        params = parse_param_sets(sets, settings.sampling, settings.presets)
    except ParamSetError as exc:
        print(f"tokendial compare: {exc.message} Nothing was started.", file=err)
        return EXIT_USAGE
    if settings.backend != "local":
        print(f"tokendial compare: runs on the local model only (backend is {settings.backend}).", file=err)
        return EXIT_USAGE
    from tui.engine.llama_engine import load_engine

    try:
        engine = load_engine(load_config(settings, top_n=settings.top_n))
    except EngineError as exc:
        print(f"tokendial: cannot load the model: {exc.message}", file=err)
        if exc.hint:
            print(f"  {exc.hint}", file=err)
        return EXIT_FAILED
    try:
        for warning in engine.info.warnings:
            print(f"tokendial: WARNING: {warning}", file=err)
        decoder = BatchDecoder(engine)
        conversation = Conversation(LiveParams(settings.sampling), system_prompt=settings.system_prompt)
        conversation.add_prompt(prompt)
        messages = list(conversation.messages())
        try:
            decoder.check(messages, params)
        except EngineError as exc:
            print(f"tokendial compare: {exc}. Nothing was started.", file=err)
            return EXIT_USAGE
        if view:
            return _view(decoder, messages, params, settings, out)
        done = _stream(decoder, messages, params, json_output, engine.info, out, err)
    finally:
        engine.close()
    if done is None or any(d.stop.kind is StopKind.ERROR for d in done.dones):
        return EXIT_FAILED
    return EXIT_OK


def _stream(
    decoder: BatchDecoder,
    messages: list[ChatMessage],
    params: list[SamplingParams],
    json_output: bool,
    info: ModelInfo,
    out: TextIO,
    err: TextIO,
) -> CompareDone | None:
    """The compare in a worker thread (Ctrl-C cancels every column cleanly)."""
    lives = [LiveParams(p) for p in params]
    done: CompareDone | None = None
    for item in in_thread(
        lambda cancel: decoder.stream_compare(messages, lives, cancel), name="tokendial-compare"
    ):
        if isinstance(item, BaseException):
            print(f"tokendial: the engine failed: {type(item).__name__}: {item}", file=err)
            break
        if isinstance(item, CompareDone):
            done = item
        if json_output:
            out.write(json_line(compare_record(item, params, info)) + "\n")
            out.flush()
        elif isinstance(item, PromptProgress) and item.total > 256:
            print(f"[prompt {item.evaluated}/{item.total}]", file=err)
    if done is not None and not json_output:
        _print_columns(done, params, out)
    return done


def _view(
    decoder: BatchDecoder,
    messages: list[ChatMessage],
    params: list[SamplingParams],
    settings: Settings,
    out: TextIO,
) -> int:
    """The compare view as a small app; a kept column's reply is printed when it closes."""
    from tui.compare_app import CompareApp

    app = CompareApp(
        decoder,
        messages,
        params,
        base=settings.sampling,
        presets=dict(settings.presets),
        export_dir=settings.data_dir / "exports",
    )
    outcome = app.run()
    if outcome is not None and outcome.promoted is not None:
        done = outcome.dones[outcome.promoted]
        if done is not None:
            out.write(clean(done.text) + "\n")
    return EXIT_OK


def _print_columns(done: CompareDone, params: Sequence[SamplingParams], out: TextIO) -> None:
    show = clean if is_terminal(out) else str
    for column, (reply, p) in enumerate(zip(done.dones, params, strict=True)):
        out.write(f"── column {column + 1}: {describe(p)} ──\n")
        out.write(show(reply.text) + "\n")
        speed = f", {reply.tokens_per_s:.1f} tok/s" if reply.tokens_per_s else ""
        out.write(f"[{clean(reply.stop.label())}] {reply.generated} tokens{speed}, seed {reply.seed}\n\n")
    if done.parting is not None:
        out.write(clean(done.parting.describe()) + "\n")
    elif len(done.dones) > 1:
        out.write("the columns did not part: the same tokens throughout\n")
    total = sum(d.generated for d in done.dones)
    rate = f", {total * 1000.0 / done.wall_ms:.1f} tok/s over all columns" if done.wall_ms > 0 else ""
    out.write(
        f"[{len(done.dones)} columns in one batch: prompt {done.prompt_tokens} tokens evaluated once, "
        f"{done.steps} batched steps, {total} tokens{rate}]\n"
    )
    out.flush()


def compare_record(event: CompareEvent, params: Sequence[SamplingParams], info: ModelInfo) -> dict[str, Any]:
    """One compare event as a JSON-ready dict; column events carry ``column``."""
    if isinstance(event, ColumnToken):
        return {**event_record(event.token, info), "column": event.column}
    if isinstance(event, ColumnDone):
        record = {**event_record(event.done, info), "column": event.column}
        record.pop("model", None)  # once, in compare_done
        return record
    if isinstance(event, PromptProgress):
        return event_record(event, info)
    if isinstance(event, CompareStarted):
        return {"event": "compare_started", **plain(dataclasses.asdict(event))}
    columns = [
        {
            "column": column,
            "params": p.model_dump(mode="json"),
            "stop": {**plain(dataclasses.asdict(reply.stop)), "label": reply.stop.label()},
            "generated": reply.generated,
            "seed": reply.seed,
            "text": reply.text,
            "tokens_per_s": reply.tokens_per_s,
        }
        for column, (reply, p) in enumerate(zip(event.dones, params, strict=True))
    ]
    model = plain(dataclasses.asdict(info))
    return {
        "event": "compare_done",
        "columns": columns,
        "parting": plain(dataclasses.asdict(event.parting)) if event.parting else None,
        "prompt_tokens": event.prompt_tokens,
        "prompt_evaluated": event.prompt_evaluated,
        "steps": event.steps,
        "decoded": event.decoded,
        "wall_ms": event.wall_ms,
        "model": model,
    }
