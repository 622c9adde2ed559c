"""Helpers for the reliability matrix: the TUI test helpers, bad model files, output checks."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from textual.app import App
from textual.pilot import Pilot

from tests.tui.tui_app_helpers import (
    SIZE,
    make_app,
    make_settings,
    reply_done,
    send,
    send_and_hold,
    wait_for,
    wait_ready,
)
from tui.app import TokendialApp
from tui.engine.events import ChatMessage, EngineEvent, ModelInfo, ReplyDone
from tui.engine.live import LiveParams
from tui.engine.protocol import ChatEngine, LoadConfig
from tui.widgets.chat_view import AssistantMessage

TESTS = Path(__file__).resolve().parents[1]

# The TUI tests' helpers, re-exported for the reliability tests.
__all__ = [
    "SIZE",
    "make_app",
    "make_settings",
    "reply_done",
    "send",
    "send_and_hold",
    "wait_for",
    "wait_ready",
]


class SharedEngine:
    """A ChatEngine that forwards to a shared real engine and ignores ``close`` (the fixture owns it)."""

    def __init__(self, engine: ChatEngine) -> None:
        self.engine = engine

    @property
    def info(self) -> ModelInfo:
        """The shared engine's model facts."""
        return self.engine.info

    def stream_reply(
        self,
        messages: Sequence[ChatMessage],
        live: LiveParams,
        cancel: threading.Event,
        *,
        continue_from: Sequence[int] = (),
        raw: bool = False,
    ) -> Iterator[EngineEvent]:
        """The shared engine's reply."""
        return self.engine.stream_reply(messages, live, cancel, continue_from=continue_from, raw=raw)

    def count_tokens(self, text: str) -> int:
        """The shared engine's token count."""
        return self.engine.count_tokens(text)

    def close(self) -> None:
        """Leave the shared engine open."""


def write_unknown_arch_gguf(path: Path) -> Path:
    """A well-formed GGUF file whose architecture llama.cpp doesn't know."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch="notarealarch")
    writer.add_name("not a real model")
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_gguf_header(path: Path) -> Path:
    """A file with just a GGUF v3 header (passes the quick check; llama.cpp refuses it)."""
    path.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + bytes(16))
    return path


def screen_text(app: App[Any]) -> str:
    """Everything the app draws now, as plain text (every visible segment of the screen)."""
    return "".join(segment.text for strip in app.screen._compositor.render_strips() for segment in strip)


def record_notifications(app: App[Any]) -> list[str]:
    """Every notification message the app shows from now on (kept even after the toast times out)."""
    seen: list[str] = []
    show = app.notify

    def notify(message: str, **options: Any) -> None:
        seen.append(message)
        show(message, **options)

    app.notify = notify  # type: ignore[method-assign]
    return seen


def real_app(engine: ChatEngine, tmp_path: Path, **sampling: Any) -> TokendialApp:
    """The app on a shared real engine (``sampling`` overrides the default parameters)."""

    def factory(config: LoadConfig) -> ChatEngine:
        return SharedEngine(engine)

    return TokendialApp(
        make_settings(tmp_path, **sampling), engine_factory=factory, config_path=tmp_path / "config.toml"
    )


async def finished(pilot: Pilot[Any]) -> None:
    """Wait, long enough for the real model on a busy machine, until no reply is running."""
    app = pilot.app
    assert isinstance(app, TokendialApp)
    await wait_for(
        pilot, lambda: not app.busy and all(r.finished for r in app.records.values()), "reply", limit=6000
    )
    await pilot.pause()


def last_done(app: TokendialApp) -> ReplyDone:
    """The ReplyDone of the last reply in the transcript."""
    done = list(app.chat_view.query(AssistantMessage))[-1].record.done
    assert done is not None
    return done
