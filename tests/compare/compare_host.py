"""A tiny host app for the compare view (loads the app's one stylesheet), and waiting helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from textual.app import App
from textual.pilot import Pilot

from settings.sampling import DEFAULT_PRESETS, SamplingParams
from tests.compare.compare_fakes import FakeBatch
from tui.compare_export import CompareOutcome
from tui.engine.events import ChatMessage
from tui.screens.compare import CompareScreen

APP_TCSS = Path(__file__).resolve().parents[2] / "tui" / "app.tcss"
PROMPT = [ChatMessage("user", "What colour is the sky?")]


class CompareHost(App[None]):
    """Opens a CompareScreen on start; keeps what it was dismissed with."""

    CSS_PATH = str(APP_TCSS)

    def __init__(
        self, batch: FakeBatch, sets: Sequence[SamplingParams] | None = None, export_dir: Path | None = None
    ) -> None:
        super().__init__()
        self.export_dir = export_dir
        self.batch = batch
        self.sets = sets
        self.outcome: CompareOutcome | None = None
        self.dismissed = False

    def on_mount(self) -> None:
        """Push the compare view."""
        screen = CompareScreen(
            PROMPT,
            self.batch,
            base=SamplingParams(),
            presets=DEFAULT_PRESETS,
            sets=self.sets,
            check=self.batch.check,
            export_dir=self.export_dir,
        )
        self.push_screen(screen, self._on_closed)

    def _on_closed(self, outcome: CompareOutcome | None) -> None:
        self.outcome = outcome
        self.dismissed = True

    @property
    def compare(self) -> CompareScreen:
        """The compare view (the active screen)."""
        screen = self.screen
        assert isinstance(screen, CompareScreen)
        return screen


async def wait_for(
    pilot: Pilot[Any], condition: Callable[[], bool], what: str, timeout: float = 10.0
) -> None:
    """Let the app run until ``condition`` holds (fails after ``timeout`` seconds)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def run_to_end(pilot: Pilot[Any]) -> CompareScreen:
    """Press r and wait until every column ended."""
    app = pilot.app
    assert isinstance(app, CompareHost)
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), "the compare view")
    await pilot.press("r")
    await wait_for(pilot, lambda: app.compare.done is not None, "the compare to end")
    await pilot.pause()
    return app.compare
