"""The inspector in the app (Pilot, FakeEngine): selecting by keys and mouse, what-if, strip, branches."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.inspector.inspector_fakes import LECTURE_SCRIPT, BranchingFake
from tests.inspector.inspector_helpers import (
    SAMPLE,
    SIZE,
    cell_text,
    inspector_of,
    make_app,
    replied,
    reply_done,
    wait_for,
)
from tui.engine.events import CutBy
from tui.screens.confirm import ConfirmScreen
from tui.widgets.chat_view import AssistantMessage
from tui.widgets.confidence_strip import ConfidenceStrip
from tui.widgets.inspector import Inspector, WhatIfInput
from tui.widgets.sampling_panel import SamplingPanel


def _fake() -> BranchingFake:
    return BranchingFake(script=LECTURE_SCRIPT)


def _independent_drawn(p_raw: list[float], kept: list[bool], temperature: float) -> list[float]:
    """p of the draw: p_raw ** (1/T) renormalised over the kept candidates (the fake's logits are log p)."""
    weights = [p ** (1 / temperature) if k else 0.0 for p, k in zip(p_raw, kept, strict=True)]
    total = sum(weights)
    return [w / total for w in weights]


async def test_keys_open_the_inspector_and_follow_the_cursor(tmp_path: Path) -> None:
    app = make_app(_fake(), tmp_path, **SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        await replied(pilot)
        await pilot.press("ctrl+t", "i")
        inspector = inspector_of(app)
        assert inspector.display and app.inspector_open
        assert not app.screen.query_one(SamplingPanel).display  # the inspector takes its place
        assert inspector.event is not None and inspector.event.index == 0
        await pilot.press("right", "right", "right", "right", "right")  # to " cake"
        await pilot.pause()
        event = inspector.event
        assert event is not None and event.index == 5 and event.text == " cake"
        # Every number in the table, against an independent computation from the event.
        cands = sorted(event.candidates, key=lambda c: -c.p_raw)
        cumulative = 0.0
        for row, cand in enumerate(cands):
            cumulative += cand.p_raw
            assert cell_text(inspector, row, "p_raw") == f"{cand.p_raw:.4f}"
            assert cell_text(inspector, row, "cum") == f"{cumulative:.4f}"
            shown = cell_text(inspector, row, "p_final")
            assert shown == ("—" if cand.cut_by else f"{cand.p_final:.4f}")
            assert cell_text(inspector, row, "mark") == ("▶" if cand.token_id == event.token_id else " ")
        # The lecture figure: cake 0.20, donut 0.10, banana 0.02 ...
        assert [cell_text(inspector, r, "token") for r in range(3)] == ["␣cake", "␣donut", "␣banana"]
        assert cell_text(inspector, 4, "cut") == "cut top-k"  # top-k 4 cuts the fifth
        # Untrusted text stays literal in the table.
        assert cell_text(inspector, 5, "token").startswith("␣[bold]x[/")
        await pilot.press("i")  # into the inspector
        assert app.focused is inspector.table
        await pilot.press("escape")  # close it
        assert not inspector.display and app.screen.query_one(SamplingPanel).display
        assert app.focused is app.token_view


async def test_a_click_on_a_token_opens_the_inspector_there(tmp_path: Path) -> None:
    app = make_app(_fake(), tmp_path, **SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        await replied(pilot)
        await pilot.press("ctrl+t")
        await pilot.pause()
        view = app.token_view
        region = view.region
        # Find a screen cell of token #3 (" slice") by the token index the view puts on it.
        x = next(
            x
            for x in range(region.width)
            if app.screen.get_style_at(region.x + x, region.y).meta.get("token") == 3
        )
        await pilot.click(view, offset=(x, 0))
        await pilot.pause()
        inspector = inspector_of(app)
        assert app.inspector_open and view.cursor == 3
        assert inspector.event is not None and inspector.event.text == " slice"


async def test_what_if_recomputes_the_step_without_generating(tmp_path: Path) -> None:
    engine = _fake()
    app = make_app(engine, tmp_path, **SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        await replied(pilot)
        await pilot.press("ctrl+t", "i", *["right"] * 5)
        inspector = inspector_of(app)
        event = inspector.event
        assert event is not None
        calls = len(engine.calls)
        temperature = inspector.query_one("#whatif-temperature", WhatIfInput)
        temperature.focus()
        temperature.value = "1.5"
        await pilot.pause()
        step = inspector.step
        assert step is not None and inspector.whatif is not None and step is not inspector.actual
        cands = sorted(event.candidates, key=lambda c: -c.p_raw)
        p_raw = [c.p_raw for c in cands]
        # top-k 4; top-p 0.9 on the top 4 renormalised (llama.cpp's order); min-p 0.05
        top4 = p_raw[:4]
        cumulative = [sum(top4[: i + 1]) / sum(top4) for i in range(4)]
        n_top_p = next(i + 1 for i, c in enumerate(cumulative) if c >= 0.9)
        kept = [i < n_top_p and p >= 0.05 * p_raw[0] for i, p in enumerate(p_raw)]
        assert kept == [True, True, True, False, False, False]  # bread: cut by top-p
        expected = _independent_drawn(p_raw, kept, 1.5)
        for row, p in enumerate(expected):
            assert step.rows[row].p_final == pytest_approx(p)
            assert cell_text(inspector, row, "p_final") == (f"{p:.4f}" if kept[row] else "—")
        summary = str(inspector.query_one("#inspector-summary").render())
        assert "WHAT-IF" in summary and "nothing generated" in summary
        # Step top-k down to 1 with the arrow key: only cake survives.
        top_k = inspector.query_one("#whatif-top_k", WhatIfInput)
        top_k.focus()
        await pilot.press("down", "down", "down")
        assert top_k.value == "1"
        step = inspector.step
        assert step is not None and step.kept == 1
        assert [r.cut_by for r in step.rows[1:4]] == [CutBy.TOP_K] * 3
        assert cell_text(inspector, 1, "cut") == "cut top-k ▼"  # kept as generated, cut now
        # An invalid value is flagged and not applied.
        top_p = inspector.query_one("#whatif-top_p", WhatIfInput)
        top_p.value = "1.5"
        await pilot.pause()
        assert top_p.has_class("invalid") and inspector.step is step
        # r resets to the step as it happened; nothing was generated meanwhile.
        inspector.table.focus()
        await pilot.press("r")
        assert inspector.whatif is None and inspector.step is inspector.actual
        assert top_p.value == "0.9" and not top_p.has_class("invalid")
        assert len(engine.calls) == calls


def pytest_approx(value: float) -> object:
    """pytest.approx with a tight tolerance."""
    return pytest.approx(value, rel=1e-9, abs=1e-12)


async def test_least_confident_key_and_strip_click(tmp_path: Path) -> None:
    app = make_app(_fake(), tmp_path, **SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        await replied(pilot)
        await pilot.press("u")  # in the prompt box it is just a letter
        assert app.prompt.text == "u" and not app.inspector_open
        app.prompt.clear()
        await pilot.press("ctrl+t", "u")  # from the token view, the inspector not opened first
        await pilot.pause()
        record = app.token_view.record
        assert record is not None
        ps = [event.p_raw for event in record.events]
        assert app.token_view.cursor == ps.index(min(ps)) == 5  # " cake" at 0.20
        assert not app.inspector_open  # u only selects; the strip over the tokens marks it
        strip = app.screen.query_one(ConfidenceStrip)
        assert strip.cursor == 5 and strip.least == 5
        assert "#5 ' cake' p=0.200" in str(strip.render())
        await pilot.click(strip, offset=(2, 0))  # padding 1: the second cell
        await pilot.pause()
        assert app.token_view.cursor == 1 and strip.cursor == 1
        assert app.focused is app.token_view
        await pilot.press("i")  # the inspector opens on the selected token, the strip stays
        inspector = inspector_of(app)
        assert inspector.event is not None and inspector.event.index == 1
        await pilot.press("escape", "u")
        await pilot.pause()
        assert inspector.event is not None and inspector.event.index == 5  # it follows u while open


async def test_branch_from_another_candidate_and_switch_siblings(tmp_path: Path) -> None:
    engine = _fake()
    app = make_app(engine, tmp_path, **SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        await replied(pilot)
        original = app.token_view.record
        assert original is not None and original.done is not None
        first_text = original.done.text
        assert first_text == "I had a slice of cake."
        await pilot.press("ctrl+t", "i", *["right"] * 5, "i")  # " cake", into the table
        inspector = inspector_of(app)
        await pilot.press("down")  # " donut"
        row = inspector.highlighted_row()
        assert row is not None and row.text == " donut"
        await pilot.press("b")
        await reply_done(pilot)
        branch = app.token_view.record
        assert branch is not None and branch is not original and branch.done is not None
        assert branch.done.text == "I had a slice of donut with cream."
        assert [e.token_id for e in branch.events[:5]] == [e.token_id for e in original.events[:5]]
        assert branch.events[5].token_id == row.token_id
        assert [e.index for e in branch.events] == list(range(len(branch.events)))
        # The engine continued from the fixed tokens: only the alternative was evaluated.
        assert engine.continued[-1] == tuple(e.token_id for e in branch.events[:6])
        assert branch.done.prompt_evaluated == 1
        assert app.history[-1].content == branch.done.text
        message = app.chat_view.query(AssistantMessage).last()
        assert message.record is branch and "branch 2/2" in str(message.border_title)
        # Autosave stored the branch with its fixed tokens' events too.
        store, chat_id = app.chat_session.store, app.chat_session.chat_id
        assert chat_id is not None
        saved = store.load_chat(chat_id).messages
        assert [m.text for m in saved] == ["What did you have?", branch.done.text]
        events = store.load_events(saved[-1].id)
        assert events is not None and [e.token_id for e in events] == [e.token_id for e in branch.events]
        # [ shows the old continuation again, ] the branch.
        await pilot.press("left_square_bracket")
        await pilot.pause()
        message = app.chat_view.query(AssistantMessage).last()
        assert message.record is original and "branch 1/2" in str(message.border_title)
        assert app.history[-1].content == first_text
        assert app.token_view.record is original
        assert len(app.chat_view.query(AssistantMessage)) == 1
        saved = store.load_chat(chat_id).messages
        assert [m.text for m in saved] == ["What did you have?", first_text]  # the branch shown
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert app.chat_view.query(AssistantMessage).last().record is branch
        assert app.history[-1].content == branch.done.text
        # The chat store has the branch shown, with all its token events (fixed ones included).
        saved = store.load_chat(chat_id).messages
        assert [m.text for m in saved] == ["What did you have?", branch.done.text]
        events = store.load_events(saved[-1].id)
        assert events is not None and [e.token_id for e in events] == [e.token_id for e in branch.events]


async def test_branch_refusals_explain_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(_fake(), tmp_path, **SAMPLE)
    notes: list[str] = []
    monkeypatch.setattr(app, "notify", lambda message, **_: notes.append(message))
    async with app.run_test(size=SIZE) as pilot:
        await replied(pilot)
        record = app.token_view.record
        assert record is not None
        same = record.events[2].token_id
        assert not await app.branch(record.reply_id, 2, same)  # the token it already has
        await pilot.press("ctrl+t", "right_square_bracket")  # no branches yet: a note, nothing changes
        assert app.chat_view.query(AssistantMessage).last().record is record
        await replied(pilot, "And then?")
        # An earlier reply: nothing happens before the user agrees to drop the turns after it.
        assert not await app.branch(record.reply_id, 2, record.events[2].candidates[1].token_id)
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen) and len(app.history) == 4 and not app.busy
        assert any("token the reply has" in n for n in notes)
        assert any("no branches" in n for n in notes)


async def test_inspector_message_ids(tmp_path: Path) -> None:
    """Branch requests carry the reply, the position and the candidate."""
    seen: list[Inspector.BranchRequested] = []
    app = make_app(_fake(), tmp_path, **SAMPLE)

    def hook(message: object) -> None:
        if isinstance(message, Inspector.BranchRequested):
            seen.append(message)

    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await replied(pilot)
        await pilot.press("ctrl+t", "i", "right", "i", "down", "b")
        await reply_done(pilot)
        assert len({id(m) for m in seen}) == 1  # one request (seen at each node it bubbles through)
        record = app.branches.set_of(seen[0].reply_id)
        assert record is not None and seen[0].index == 1
        assert seen[0].token_id == record.records[0].events[1].candidates[1].token_id
        await wait_for(pilot, lambda: not app.busy, "branch done")


async def test_inspector_before_any_reply_and_after_a_new_chat(tmp_path: Path) -> None:
    app = make_app(_fake(), tmp_path, **SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state.value == "ready", "model loaded")
        await pilot.press("ctrl+t", "i")
        await pilot.pause()
        inspector = inspector_of(app)
        assert app.inspector_open and inspector.event is None
        assert "Select a token" in str(inspector.query_one("#inspector-head").render())
        await pilot.press("u")  # nothing to jump to: a note, no crash
        assert app.token_view.cursor is None
        await pilot.press("escape")  # focus is on the token view: the app's cancel, nothing to cancel
        await replied(pilot)
        app.token_view.focus()  # the token view and the inspector are still shown
        await pilot.press("right", "i", "down", "b")
        await reply_done(pilot)
        assert app.branches.sets
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert not app.branches.sets and not app.inspector_open
        assert app.screen.query_one(SamplingPanel).display


async def test_strip_and_head_follow_a_branch(tmp_path: Path) -> None:
    app = make_app(_fake(), tmp_path, **SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        await replied(pilot)
        await pilot.press("ctrl+t", "i", "right")
        inspector = inspector_of(app)
        strip = app.screen.query_one(ConfidenceStrip)
        first = app.token_view.record
        assert first is not None and len(strip.values) == len(first.events)
        await pilot.press("i", "down", "b")  # a branch: streamed into the reply being inspected
        await reply_done(pilot)
        branch = app.token_view.record
        assert branch is not None and branch is not first
        assert len(branch.events) == 2 + 3  # "I", the picked " ate", then the branch script
        app.token_view.cursor = 1
        await pilot.pause()
        assert inspector.reply_id == branch.reply_id
        assert list(strip.events) == branch.events
        assert strip.values == [e.p_raw for e in branch.events]
        assert "picked by you" in str(inspector.query_one("#inspector-head").render())
        app.token_view.cursor = 3
        await pilot.pause()
        assert "after the branch point" in str(inspector.query_one("#inspector-head").render())
