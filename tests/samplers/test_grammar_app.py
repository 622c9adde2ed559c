"""Grammar errors in the app, on the real model: said at load (panel + notification) before any reply,
refused inline when applied mid-reply (the running reply and the chat are kept)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Button, Collapsible, TextArea

from settings.config import Settings
from settings.sampling import SamplingParams
from tests.bench.common import ignore_eos
from tests.tui.tui_app_helpers import SIZE, reply_done, send, wait_for
from tui.app import TokendialApp
from tui.engine.events import StopKind
from tui.widgets.status_bar import ModelState

pytestmark = pytest.mark.real_model

LIMIT = 3000  # pauses of 10 ms: the machine may be busy
BAD = 'root ::= "yes" | "no"\nanswer = "maybe"\n'
BAD_SAYS = "grammar error (line 2, column 8): expecting ::="


def real_app(model_path: Path, tmp_path: Path, **sampling: object) -> TokendialApp:
    settings = Settings(
        model_path=model_path,
        data_dir=tmp_path / "data",
        n_ctx=1024,
        n_threads=1,
        sampling=SamplingParams(**sampling),
    )
    return TokendialApp(settings, config_path=tmp_path / "config.toml")


def apply_grammar(app: TokendialApp, text: str) -> None:
    panel = app.panel
    panel.query_one("#section-constraints", Collapsible).collapsed = False
    panel.query_one("#field-grammar", TextArea).load_text(text)
    panel.query_one("#apply-constraint", Button).press()


async def test_a_configured_bad_grammar_is_said_at_load_then_fixed_in_the_panel(
    model_path: Path, tmp_path: Path
) -> None:
    app = real_app(model_path, tmp_path, grammar=BAD, seed=2, max_new_tokens=8)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state is ModelState.READY, "model loaded", LIMIT)
        await pilot.pause()
        assert app.panel.errors["grammar"] == BAD_SAYS
        said = [str(n.message) for n in app._notifications]
        assert any(
            m.startswith("Grammar error (line 2, column 8): expecting ::=. A reply would end") for m in said
        ), said
        await send(pilot, "Is the sky blue?")
        await reply_done(pilot)
        done = app.records[1].done
        assert done is not None and done.stop.kind is StopKind.ERROR and BAD_SAYS in (done.stop.message or "")
        assert [m.content for m in app.history] == ["Is the sky blue?", ""]  # the prompt is kept
        apply_grammar(app, 'root ::= "yes" | "no"')
        await pilot.pause()
        assert "grammar" not in app.panel.errors and app.live.params.grammar == 'root ::= "yes" | "no"'
        await send(pilot, "Is the sky blue?")
        await reply_done(pilot)
        last = app.records[max(app.records)].done
        assert last is not None and last.stop.kind is StopKind.EOS and last.text in ("yes", "no")


async def test_a_bad_grammar_applied_mid_reply_is_refused_and_the_reply_goes_on(
    model_path: Path, tmp_path: Path
) -> None:
    # A cap far beyond what streams during the checks, and EOS can't end it first: the reply is
    # certainly still running when the grammar comes; it is cancelled after them.
    app = real_app(model_path, tmp_path, seed=5, max_new_tokens=1500, temperature=0.9)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state is ModelState.READY, "model loaded", LIMIT)
        with ignore_eos():
            await send(pilot, "Tell me a long story about a dragon and a castle.")
            await wait_for(
                pilot, lambda: bool(app.records.get(1) and app.records[1].events), "first tokens", LIMIT
            )
            assert app.busy
            apply_grammar(app, BAD)
            await pilot.pause()
            assert app.panel.errors["grammar"] == BAD_SAYS
            assert app.busy and app.live.version == 0  # nothing applied, the reply still streams
            await pilot.press("escape")
            await reply_done(pilot)
        done = app.records[1].done
        assert done is not None and done.stop.kind is StopKind.CANCELLED
        assert done.generated == len(app.records[1].events) > 1 and len(app.history) == 2
