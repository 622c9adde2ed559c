"""The compare view with the fake batch: columns stream, part, stop alone, get promoted, stack when narrow."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Static

from settings.sampling import SamplingParams
from tests.compare.compare_fakes import FakeBatch
from tests.compare.compare_host import CompareHost, run_to_end, wait_for
from tui.engine.events import StopKind
from tui.engine.param_sets import SWEEPS, sweep_sets
from tui.screens.compare import CompareScreen
from tui.widgets.compare_column import CompareColumn
from tui.widgets.sampling_panel import StepInput

SNAP_SIZE = (130, 34)


def part_line(column: CompareColumn) -> str:
    return str(column.query_one(".compare-part", Static).render())


async def start_held(pilot: Pilot[Any], batch: FakeBatch) -> None:
    """Open the view, run, and wait until the first column holds (``hold_at``)."""
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, CompareScreen), "the view")
    await pilot.press("r")
    await wait_for(pilot, lambda: bool(batch.engines) and batch.engines[0].reached_hold.is_set(), "hold")


def test_two_columns_stream_and_part() -> None:
    async def scenario() -> None:
        app = CompareHost(FakeBatch(), sets=sweep_sets(SWEEPS[2], SamplingParams()))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await run_to_end(pilot)
            columns = screen.columns
            assert len(columns) == 2
            assert [c.record.done.stop.kind for c in columns if c.record.done] == [StopKind.EOS] * 2
            assert "".join(e.text for e in columns[0].record.events) == "The sky is blue. It is clear today."
            assert "".join(e.text for e in columns[1].record.events) == "The sky is grey and low."
            assert screen.parting is not None and screen.parting.index == 3
            assert "parted at token 3" in part_line(columns[0]) and "' blue'" in part_line(columns[0])
            assert "' grey' p=0.12" in part_line(columns[1])
            assert columns[1].view.cursor == 3  # the parting token is selected in each column
            info = str(screen.query_one("#compare-info", Static).render())
            assert "2 columns" in info and "parted at token 3" in info

    asyncio.run(scenario())


def test_stop_one_column_then_keep_another() -> None:
    async def scenario() -> None:
        batch = FakeBatch(hold_at=2)
        app = CompareHost(batch, sets=sweep_sets(SWEEPS[0], SamplingParams()))
        async with app.run_test(size=(140, 40)) as pilot:
            await start_held(pilot, batch)
            app.compare.focus_column(1)
            await pilot.pause()
            await pilot.press("s")  # column 2 alone
            batch.release()
            await wait_for(pilot, lambda: app.compare.done is not None, "the end")
            dones = [c.record.done for c in app.compare.columns]
            assert [d.stop.kind for d in dones if d] == [StopKind.EOS, StopKind.CANCELLED, StopKind.EOS]
            await pilot.press("p")  # keep the focused column
            await wait_for(pilot, lambda: app.dismissed, "the view to close")
            assert app.outcome is not None and app.outcome.promoted == 1
            assert [p.temperature for p in app.outcome.sets] == [0.2, 0.8, 1.5]
            assert len(app.outcome.events) == 3 and all(app.outcome.dones)

    asyncio.run(scenario())


def test_focused_column_params_change_live() -> None:
    async def scenario() -> None:
        batch = FakeBatch(hold_at=2)
        app = CompareHost(batch, sets=sweep_sets(SWEEPS[0], SamplingParams()))
        async with app.run_test(size=(140, 40)) as pilot:
            await start_held(pilot, batch)
            screen = app.compare
            screen.set_column_params(2, SamplingParams(temperature=1.5, max_new_tokens=3))
            batch.release()
            await wait_for(pilot, lambda: screen.done is not None, "the end")
            third = screen.columns[2].record
            assert third.done is not None and third.done.stop.kind is StopKind.MAX_TOKENS
            assert len(third.events) == 3 and third.events[2].params_version == 1
            view = screen.columns[2].view
            shown = "".join(view.render_line(y).text for y in range(view.size.height))
            assert "max new tokens 256→3" in shown  # the change is marked at the token it took effect
            assert screen.columns[0].record.done is not None
            assert screen.columns[0].record.done.stop.kind is StopKind.EOS

    asyncio.run(scenario())


def test_brackets_change_the_focused_columns_temperature_live() -> None:
    async def scenario() -> None:
        batch = FakeBatch(hold_at=2)
        app = CompareHost(batch, sets=sweep_sets(SWEEPS[0], SamplingParams()))
        async with app.run_test(size=(140, 40)) as pilot:
            await start_held(pilot, batch)
            app.compare.focus_column(1)
            await pilot.pause()
            await pilot.press("right_square_bracket", "right_square_bracket")
            batch.release()
            await wait_for(pilot, lambda: app.compare.done is not None, "the end")
            second = app.compare.columns[1].record
            assert second.done is not None
            assert second.done.params[second.events[-1].params_version].temperature == 1.0
            assert second.events[0].params_version == 0 and second.events[-1].params_version == 2
            assert app.compare.columns[0].record.events[-1].params_version == 0  # the others untouched

    asyncio.run(scenario())


def test_the_sampling_panel_drives_the_focused_column_live() -> None:
    async def scenario() -> None:
        batch = FakeBatch(hold_at=2)
        app = CompareHost(batch, sets=sweep_sets(SWEEPS[0], SamplingParams()))
        async with app.run_test(size=(160, 40)) as pilot:
            await start_held(pilot, batch)
            screen = app.compare
            screen.focus_column(1)
            await pilot.pause()
            await pilot.press("t")  # the panel shows the focused column's parameters
            await pilot.pause()
            panel = screen.panel
            assert panel.display and panel.border_title == "Sampling · column 2"
            field = panel.query_one("#field-temperature", StepInput)
            assert field.value == "0.8"  # the sweep's second set
            field.focus()
            field.value = "1.3"
            await pilot.press("enter")
            await wait_for(
                pilot, lambda: screen.lives[1].params.temperature == 1.3, "the column's live params"
            )
            assert screen.focused_column == 1  # typing in the panel keeps the column it drives
            assert [live.params.temperature for live in screen.lives] == [0.2, 1.3, 1.5]  # the others as set
            batch.release()
            await wait_for(pilot, lambda: screen.done is not None, "the end")
            second = screen.columns[1].record
            versions = [e.params_version for e in second.events]
            assert versions[:2] == [0, 0] and set(versions[2:]) == {1}  # from its next token
            assert second.done is not None and second.done.params[1].temperature == 1.3
            view = screen.columns[1].view
            shown = "".join(view.render_line(y).text for y in range(view.size.height))
            assert "temperature 0.8→1.3" in shown  # marked at the token it took effect, as in the chat
            assert {e.params_version for e in screen.columns[0].record.events} == {0}

    asyncio.run(scenario())


def test_columns_that_do_not_fit_are_refused_before_anything_runs() -> None:
    async def scenario() -> None:
        batch = FakeBatch(n_ctx=256)
        app = CompareHost(batch, sets=[SamplingParams(max_new_tokens=200)] * 3)
        async with app.run_test(size=(140, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), "the view")
            await pilot.press("r")
            await pilot.pause()
            info = str(app.compare.query_one("#compare-info", Static).render())
            assert "1 column fits" in info and "n_ctx" in info
            assert not batch.engines and not app.compare.running

    asyncio.run(scenario())


def test_narrow_terminal_stacks_the_columns() -> None:
    async def scenario() -> None:
        sets = [SamplingParams(temperature=t) for t in (0.2, 0.8, 1.2, 1.5)]
        app = CompareHost(FakeBatch(), sets=sets)
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), "the view")
            container = app.compare.query_one("#compare-columns")
            assert not container.has_class("-stacked")
            await pilot.resize_terminal(70, 30)
            await pilot.pause()
            assert container.has_class("-stacked")
            screen = await run_to_end(pilot)
            assert all(c.record.done for c in screen.columns)
            await pilot.resize_terminal(30, 12)  # tiny: nothing crashes
            await pilot.pause()

    asyncio.run(scenario())


def test_choosing_a_sweep_replaces_the_columns() -> None:
    async def scenario() -> None:
        app = CompareHost(FakeBatch())
        async with app.run_test(size=(140, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), "the view")
            screen = app.compare
            assert [c.params.temperature for c in screen.columns] == [0.2, 0.8, 1.5]
            await screen.show_sets(sweep_sets(SWEEPS[1], SamplingParams()))
            await pilot.pause()
            assert [c.params.max_new_tokens for c in screen.columns] == [100, 150, 200]

    asyncio.run(scenario())


def test_export_writes_every_column_with_params_and_stop_reason(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = CompareHost(FakeBatch(), sets=sweep_sets(SWEEPS[0], SamplingParams()), export_dir=tmp_path)
        async with app.run_test(size=(140, 40)) as pilot:
            await run_to_end(pilot)
            await pilot.press("e")
            await pilot.pause()
            await pilot.press("escape")  # nothing runs: escape closes the view
            await wait_for(pilot, lambda: app.dismissed, "the view to close")
            assert app.outcome is not None and app.outcome.promoted is None
        [path] = tmp_path.glob("compare-*.json")
        record = json.loads(path.read_text(encoding="utf-8"))
        assert record["format"] == "tokendial.compare" and record["version"] == 1
        assert record["messages"] == [{"role": "user", "content": "What colour is the sky?"}]
        columns = record["columns"]
        assert [c["params"]["temperature"] for c in columns] == [0.2, 0.8, 1.5]
        assert [c["stop"]["kind"] for c in columns] == ["eos"] * 3
        assert columns[1]["text"] == "The sky is grey and low."
        assert record["parting"]["index"] == 3

    asyncio.run(scenario())


async def _finished(pilot: Pilot[Any]) -> None:
    await run_to_end(pilot)
    await pilot.pause()


def test_snapshot_two_columns(snap_compare: Any, tmp_path: Path) -> None:
    app = CompareHost(FakeBatch(), sets=sweep_sets(SWEEPS[2], SamplingParams()))
    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=_finished)


def test_snapshot_four_columns(snap_compare: Any, tmp_path: Path) -> None:
    sets = [SamplingParams(temperature=t, seed=1) for t in (0.2, 0.8, 1.2, 1.5)]
    app = CompareHost(FakeBatch(), sets=sets)
    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=_finished)
