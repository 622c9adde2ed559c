"""``tokendial compare --view``: the compare view as its own small app on the real model.

The model is loaded before the app starts; each run of the view decodes in the view's thread
worker (one run at a time, so one thread uses the engine at a time). Keeping a column (p) exits
and prints that column's reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from textual.app import App

from settings.sampling import SamplingParams
from tui.compare_export import CompareOutcome
from tui.engine.batch import BatchDecoder, CompareDoesNotFit
from tui.engine.events import ChatMessage
from tui.screens.compare import CompareScreen

APP_TCSS = Path(__file__).resolve().parent / "app.tcss"


class CompareApp(App[CompareOutcome | None]):
    """Hosts one CompareScreen on a BatchDecoder."""

    CSS_PATH = str(APP_TCSS)
    TITLE = "tokendial compare"

    def __init__(
        self,
        decoder: BatchDecoder,
        messages: Sequence[ChatMessage],
        sets: Sequence[SamplingParams],
        *,
        base: SamplingParams,
        presets: dict[str, SamplingParams],
        export_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.decoder = decoder
        self.messages = list(messages)
        self.sets = list(sets)
        self.base = base
        self.presets = presets
        self.export_dir = export_dir

    def on_mount(self) -> None:
        """Open the view."""
        screen = CompareScreen(
            self.messages,
            self.decoder.stream_compare,
            base=self.base,
            presets=self.presets,
            sets=self.sets or None,
            check=self._check,
            export_dir=self.export_dir,
        )
        self.push_screen(screen, self.exit)

    def _check(self, messages: Sequence[ChatMessage], sets: Sequence[SamplingParams]) -> str | None:
        try:
            self.decoder.check(messages, sets)
        except CompareDoesNotFit as exc:
            return exc.message
        return None
