"""What the headless commands (``generate``, ``compare``) share: exit codes, JSON lines, terminal
checks and a worker thread that Ctrl-C cancels cleanly. No Textual here."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import math
import queue
import re
import signal
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO, TypeVar

from tui.engine.events import EngineEvent, ModelInfo, PromptProgress, PromptTrimmed, ReplyDone, TokenEvent

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
_EVENT_NAMES: dict[type, str] = {
    TokenEvent: "token",
    PromptProgress: "prompt_progress",
    PromptTrimmed: "prompt_trimmed",
    ReplyDone: "done",
}
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@contextlib.contextmanager
def sigint_cancels(cancel: threading.Event) -> Iterator[None]:
    """Inside, Ctrl-C (SIGINT) sets ``cancel`` instead of raising KeyboardInterrupt (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda _signum, _frame: cancel.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def in_thread(
    produce: Callable[[threading.Event], Iterator[T]], *, name: str = "tokendial-headless"
) -> Generator[T | BaseException, None, None]:
    """The items of ``produce(cancel)``, run in a worker thread; Ctrl-C sets ``cancel`` (the
    producer then ends cleanly); an exception in the producer comes out as the last item.

    Returns only after the thread ended, so the engine is never closed while it decodes (freeing
    the model mid-decode crashes the process: a segmentation fault, seen with Ctrl-C).
    """
    cancel = threading.Event()
    items: queue.Queue[T | BaseException | None] = queue.Queue()

    def work() -> None:
        try:
            for item in produce(cancel):
                items.put(item)
        except BaseException as exc:  # the engine promises not to raise; report it if it does
            items.put(exc)
        finally:
            items.put(None)

    worker = threading.Thread(target=work, name=name, daemon=True)
    with sigint_cancels(cancel):
        worker.start()
        try:
            while True:
                try:
                    item = items.get()
                except KeyboardInterrupt:
                    cancel.set()
                    continue
                if item is None:
                    break
                yield item
        finally:
            cancel.set()
            while worker.is_alive():
                try:
                    worker.join(timeout=0.1)
                except KeyboardInterrupt:
                    cancel.set()


def json_line(record: dict[str, Any]) -> str:
    """``record`` as one JSON line; every control character escaped (json leaves C1 and bidi raw)."""
    text = json.dumps(record, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal (model output is then shown with safe stand-ins)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def event_record(event: EngineEvent, info: ModelInfo) -> dict[str, Any]:
    """One engine event as a JSON-ready dict (``event`` names its kind; NaN becomes null)."""
    record: dict[str, Any] = {"event": _EVENT_NAMES[type(event)]}
    record.update(plain(dataclasses.asdict(event)))
    if isinstance(event, ReplyDone):
        record["stop"]["label"] = event.stop.label()
        record["generated"] = event.generated
        record["timings"] = {
            "prompt_ms": event.prompt_ms,
            "first_token_ms": event.first_token_ms,
            "decode_ms": event.decode_ms,
            "tokens_per_s": event.tokens_per_s,
        }
        record["params"] = {str(v): p.model_dump(mode="json") for v, p in event.params.items()}
        model = plain(dataclasses.asdict(info))
        model["gpu_label"] = info.gpu_label
        record["model"] = model
    return record


def plain(value: Any) -> Any:
    """dataclasses.asdict output made JSON-safe (enums by value, paths as text, NaN as null)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value
