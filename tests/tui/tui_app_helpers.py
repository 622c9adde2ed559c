"""Helpers for the TUI tests: an app on a FakeEngine, and waiting for the app to reach a state.

A module with a unique name (test modules import it directly; ``conftest`` re-exports it for
the other test folders that load tests/tui/conftest.py by path).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from settings.config import Settings
from settings.sampling import SamplingParams
from tests.fakes import FakeEngine
from tui.app import TokendialApp
from tui.engine.protocol import ChatEngine, LoadConfig

SIZE = (120, 40)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop (no asyncio plugin needed)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


def make_settings(tmp_path: Path, **sampling: Any) -> Settings:
    """Settings for a test: a fake model path, data in ``tmp_path``, ``sampling`` overrides."""
    return Settings(
        model_path=tmp_path / "FakeLM-135M.Q4_1.gguf",
        data_dir=tmp_path / "data",
        sampling=SamplingParams(**sampling),
    )


def make_app(
    engine: FakeEngine,
    tmp_path: Path,
    *,
    gate: threading.Event | None = None,
    **sampling: Any,
) -> TokendialApp:
    """A TokendialApp whose engine factory returns ``engine`` (after ``gate`` is set, if given)."""

    def factory(config: LoadConfig) -> ChatEngine:
        if gate is not None:
            gate.wait(10)
        return engine

    return TokendialApp(
        make_settings(tmp_path, **sampling), engine_factory=factory, config_path=tmp_path / "config.toml"
    )


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool], what: str, limit: int = 500) -> None:
    """Let the app run until ``condition()`` holds (fails after ``limit`` short pauses)."""
    for _ in range(limit):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for: {what}")


async def wait_ready(pilot: Pilot[Any]) -> None:
    """Wait until the model is loaded."""
    app = pilot.app
    assert isinstance(app, TokendialApp)
    await wait_for(pilot, lambda: app.model_state.value == "ready", "model loaded")


async def send(pilot: Pilot[Any], text: str) -> None:
    """Type ``text`` in the prompt box and press Enter."""
    app = pilot.app
    assert isinstance(app, TokendialApp)
    app.prompt.focus()
    app.prompt.text = text
    await pilot.press("enter")


async def send_and_hold(pilot: Pilot[Any], engine: FakeEngine, text: str, what: str) -> None:
    """Send ``text`` and wait until ``engine`` holds at its ``hold_at`` token (``what``: the wait's name)."""
    await send(pilot, text)
    await wait_for(pilot, engine.reached_hold.is_set, what)


async def reply_done(pilot: Pilot[Any]) -> None:
    """Wait until no reply is in progress and the last one is finished."""
    app = pilot.app
    assert isinstance(app, TokendialApp)
    await wait_for(
        pilot,
        lambda: not app.busy and all(r.finished for r in app.records.values()),
        "reply finished",
    )
    await pilot.pause()


async def no_blink(pilot: Pilot[Any]) -> None:
    """Stop cursor blinking (for deterministic snapshots)."""
    for widget in pilot.app.screen.query("Input, TextArea"):
        widget.cursor_blink = False  # type: ignore[attr-defined]
    await pilot.pause()


RunBefore = Callable[[Pilot[Any]], Awaitable[None]]


@pytest.fixture
def fake() -> FakeEngine:
    """A FakeEngine with the default script (ends on EOS)."""
    return FakeEngine()
