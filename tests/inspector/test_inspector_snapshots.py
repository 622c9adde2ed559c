"""Snapshots of the inspector, in a small host app (so other panes' changes don't move them).

Deterministic: the events come from the branching FakeEngine's fixed candidates (the lecture
figure: cake 0.20, donut 0.10, banana 0.02, ...); the inspector is beside the token view in the
app (tested in test_inspector_app.py), here it is shown alone at a fixed size.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot

from settings.sampling import SamplingMode, SamplingParams
from tests.inspector.inspector_fakes import LECTURE_SCRIPT, BranchingFake
from tui.engine.events import ChatMessage, TokenEvent
from tui.engine.live import LiveParams
from tui.widgets.inspector import Inspector, WhatIfInput

Compare = Any
SAMPLE = SamplingParams(temperature=0.7, top_k=4, top_p=0.9, min_p=0.05, repeat_penalty=1.0, seed=7)
GREEDY = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0)
SIZE = (74, 36)
APP_CSS = Path(__file__).resolve().parents[2] / "tui" / "app.tcss"


class InspectorHost(App[None]):
    """The inspector alone, showing token #5 (" cake") of a reply generated with ``params``."""

    CSS_PATH = str(APP_CSS)

    def __init__(self, params: SamplingParams) -> None:
        super().__init__()
        self.params = params
        stream = BranchingFake(script=LECTURE_SCRIPT).stream_reply(
            [ChatMessage("user", "What did you have?")], LiveParams(params), threading.Event()
        )
        self.events = [e for e in stream if isinstance(e, TokenEvent)]

    def compose(self) -> ComposeResult:
        """Just the inspector."""
        yield Inspector(id="inspector")

    def on_mount(self) -> None:
        """Show " cake"."""
        inspector = self.query_one(Inspector)
        inspector.show_token(1, self.events[5], self.params, events=self.events, seed=self.params.seed)
        inspector.table.focus()


def _with_whatif(values: dict[str, str]) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        inspector = pilot.app.query_one(Inspector)
        for name, value in values.items():
            inspector.query_one(f"#whatif-{name}", WhatIfInput).value = value
        inspector.table.focus()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("params", [GREEDY, SAMPLE], ids=["greedy", "sampling"])
def test_inspector(snap_compare: Compare, params: SamplingParams) -> None:
    assert snap_compare(InspectorHost(params), terminal_size=SIZE)


def test_inspector_what_if(snap_compare: Compare) -> None:
    host = InspectorHost(SAMPLE)
    run_before = _with_whatif({"temperature": "1.5", "top_k": "0"})
    assert snap_compare(host, terminal_size=SIZE, run_before=run_before)
