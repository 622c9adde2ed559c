"""The sampling panel's sections, order editor, bias list and constraints, in a tiny host app.

The host app loads the real tui/app.tcss and records every ParamsChanged the panel posts.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Button, Collapsible, Input, Select, TextArea

from settings.sampling import DEFAULT_PRESETS, DEFAULT_SAMPLER_ORDER, Mirostat, SamplerName, SamplingParams
from tui.engine.llama_engine import LlamaEngine
from tui.widgets.sampling_panel import (
    SECTIONS,
    OrderList,
    SamplingPanel,
    StepInput,
    format_bias,
    parse_bias,
)

TCSS = Path(__file__).resolve().parents[2] / "tui" / "app.tcss"
Compare = Callable[..., bool]


class PanelHost(App[None]):
    """Just the panel, styled by the app's stylesheet."""

    CSS_PATH = str(TCSS)

    def __init__(self, params: SamplingParams | None = None) -> None:
        super().__init__()
        self.start = params or SamplingParams()
        self.changes: list[SamplingPanel.ParamsChanged] = []

    def compose(self) -> ComposeResult:
        yield SamplingPanel(self.start, dict(DEFAULT_PRESETS), SamplingParams(), id="sampling")

    @property
    def panel(self) -> SamplingPanel:
        return self.query_one(SamplingPanel)

    def on_sampling_panel_params_changed(self, message: SamplingPanel.ParamsChanged) -> None:
        self.changes.append(message)


def run(body: Callable[[Pilot[Any], PanelHost], Awaitable[None]], *, params: SamplingParams | None = None,
        size: tuple[int, int] = (80, 24)) -> None:  # fmt: skip
    async def main() -> None:
        app = PanelHost(params)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await body(pilot, app)

    asyncio.run(main())


def open_all(app: PanelHost) -> None:
    for section, _, _ in SECTIONS:
        app.panel.query_one(f"#section-{section}", Collapsible).collapsed = False


def test_sections_fold_and_start_as_documented() -> None:
    async def body(pilot: Pilot[Any], app: PanelHost) -> None:
        for section, title, folded in SECTIONS:
            box = app.panel.query_one(f"#section-{section}", Collapsible)
            assert box.title == title and box.collapsed is folded
        truncation = app.panel.query_one("#section-truncation", Collapsible)
        await pilot.click("#section-truncation CollapsibleTitle")
        await pilot.pause()
        assert truncation.collapsed
        assert not app.panel.query_one("#row-top_k").region.height  # folded away
        await pilot.click("#section-truncation CollapsibleTitle")
        await pilot.pause()
        assert not truncation.collapsed and app.panel.query_one("#row-top_k").region.height == 1

    run(body)


def test_every_sampler_field_is_in_a_section() -> None:
    async def body(pilot: Pilot[Any], app: PanelHost) -> None:
        for name in ("typical_p", "top_n_sigma", "xtc_probability", "xtc_threshold", "presence_penalty",
                     "frequency_penalty", "dry_multiplier", "dry_base", "dry_allowed_length", "dry_last_n",
                     "dynatemp_range", "dynatemp_exponent", "mirostat_tau", "mirostat_eta"):  # fmt: skip
            field = app.panel.query_one(f"#field-{name}", StepInput)
            assert field.ancestors_with_self and any(isinstance(a, Collapsible) for a in field.ancestors)
        for name in ("grammar", "json_schema"):
            app.panel.query_one(f"#field-{name}", TextArea)
        app.panel.query_one("#field-mirostat", Select)
        app.panel.query_one("#field-logit_bias", Input)

    run(body)


def test_a_typed_value_applies_and_a_bad_one_is_refused() -> None:
    async def body(pilot: Pilot[Any], app: PanelHost) -> None:
        field = app.panel.query_one("#field-typical_p", StepInput)
        field.focus()
        field.value = "0.7"
        await pilot.press("enter")
        assert app.panel.params.typical_p == 0.7 and app.changes[-1].field == "typical_p"
        field.value = "1.7"
        await pilot.press("enter")
        await pilot.pause()
        assert app.panel.params.typical_p == 0.7
        assert "typical-p must be" in app.panel.errors["typical_p"]

    run(body)


def test_order_editor_moves_samplers_up_and_down() -> None:
    async def body(pilot: Pilot[Any], app: PanelHost) -> None:
        open_all(app)
        await pilot.pause()
        order = app.panel.query_one("#order-list", OrderList)
        assert [o.id for o in order.options] == [f"order-{s.value}" for s in DEFAULT_SAMPLER_ORDER]
        order.focus()
        order.highlighted = 3  # top_k
        await pilot.press("shift+up")
        await pilot.pause()
        assert app.panel.params.samplers[2] is SamplerName.TOP_K
        assert app.panel.params.samplers[3] is SamplerName.TOP_N_SIGMA
        assert app.changes[-1].field == "samplers" and order.highlighted == 2
        await pilot.click("#order-down")
        await pilot.pause()
        assert app.panel.params.samplers == DEFAULT_SAMPLER_ORDER
        order.highlighted = 0
        await pilot.press("shift+up")  # already first: nothing happens
        assert app.panel.params.samplers == DEFAULT_SAMPLER_ORDER
        order.highlighted = len(DEFAULT_SAMPLER_ORDER) - 1
        await pilot.press("shift+up")
        await pilot.click("#order-default")
        await pilot.pause()
        assert app.panel.params.samplers == DEFAULT_SAMPLER_ORDER

    run(body, size=(80, 60))


def test_order_shows_which_samplers_are_on() -> None:
    async def body(pilot: Pilot[Any], app: PanelHost) -> None:
        order = app.panel.query_one("#order-list", OrderList)
        labels = {o.id: str(o.prompt) for o in order.options}
        assert "off" in labels["order-typ_p"] and "off" not in labels["order-top_k"]

    run(body)


def test_controls_that_do_not_apply_are_off() -> None:
    async def body(pilot: Pilot[Any], app: PanelHost) -> None:
        panel = app.panel
        assert panel.query_one("#field-dry_base").disabled  # DRY multiplier is 0
        assert panel.query_one("#field-mirostat_tau").disabled  # mirostat off
        assert panel.query_one("#field-xtc_threshold").disabled  # XTC chance is 0
        assert panel.query_one("#row-dry_base").has_class("disabled")
        panel.query_one("#field-mirostat", Select).value = 2
        await pilot.pause()
        assert panel.params.mirostat is Mirostat.V2
        for name in ("top_k", "top_p", "min_p", "typical_p", "xtc_probability", "dynatemp_range",
                     "repeat_penalty", "dry_multiplier"):  # fmt: skip
            assert panel.query_one(f"#field-{name}").disabled, name
        assert not panel.query_one("#field-mirostat_tau").disabled
        assert not panel.query_one("#field-temperature").disabled
        assert panel.has_class("mirostat")
        panel.query_one("#field-mirostat", Select).value = 0
        await pilot.pause()
        field = panel.query_one("#field-dry_multiplier", StepInput)
        field.focus()
        field.value = "0.8"
        await pilot.press("enter")
        assert not panel.query_one("#field-dry_base").disabled
        await pilot.click("#mode")  # greedy
        await pilot.pause()
        assert panel.query_one("#field-top_k").disabled and panel.query_one("#field-seed").disabled
        assert not panel.query_one("#field-repeat_penalty").disabled  # penalties apply in greedy
        assert not panel.query_one("#field-dry_base").disabled

    run(body, size=(80, 60))


def test_bias_field_list_and_clear() -> None:
    async def body(pilot: Pilot[Any], app: PanelHost) -> None:
        panel = app.panel
        panel.set_token_text(lambda token: {198: "\n", 13: "."}.get(token, "?"))
        open_all(app)
        await pilot.pause()
        field = panel.query_one("#field-logit_bias", Input)
        field.focus()
        field.value = "198=-inf, 13=2"
        await pilot.press("enter")
        assert panel.params.logit_bias == {198: -math.inf, 13: 2.0}
        listing = str(panel.query_one("#bias-list").render())
        assert "198 \\n banned" in listing and "13 . +2" in listing
        field.value = "abc=1"
        await pilot.press("enter")
        assert "not a token id" in panel.errors["logit_bias"]
        assert panel.params.logit_bias == {198: -math.inf, 13: 2.0}  # kept
        await pilot.click("#clear-biases")
        await pilot.pause()
        assert panel.params.logit_bias == {} and field.value == ""

    run(body, size=(80, 60))


def test_constraint_apply_and_bad_schema_message() -> None:
    async def body(pilot: Pilot[Any], app: PanelHost) -> None:
        panel = app.panel
        open_all(app)
        await pilot.pause()
        panel.query_one("#field-json_schema", TextArea).load_text('{"type": ')
        panel.query_one("#apply-constraint", Button).press()
        await pilot.pause()
        assert "not valid JSON" in panel.errors["json_schema"]
        assert panel.params.json_schema == ""
        panel.query_one("#field-json_schema", TextArea).load_text("")
        panel.query_one("#field-grammar", TextArea).load_text('root ::= "yes" | "no"')
        panel.query_one("#apply-constraint", Button).press()
        await pilot.pause()
        assert panel.params.grammar == 'root ::= "yes" | "no"' and "json_schema" not in panel.errors

    run(body, size=(80, 70))


def test_set_params_shows_every_field() -> None:
    params = SamplingParams(
        typical_p=0.8,
        logit_bias={5: -math.inf},
        grammar="root ::= [a-z]+",
        mirostat=Mirostat.V1,
        samplers="top_k;temperature",
        dry_sequence_breakers=("\n", "##"),
    )

    async def body(pilot: Pilot[Any], app: PanelHost) -> None:
        panel = app.panel
        panel.set_params(params)
        await pilot.pause()
        assert panel.query_one("#field-typical_p", StepInput).value == "0.8"
        assert panel.query_one("#field-logit_bias", Input).value == "5=-inf"
        assert panel.query_one("#field-grammar", TextArea).text == "root ::= [a-z]+"
        assert panel.query_one("#field-mirostat", Select).value == 1
        assert panel.query_one("#field-dry_sequence_breakers", Input).value == "\\n, ##"
        order = panel.query_one("#order-list", OrderList)
        assert [o.id for o in order.options] == ["order-top_k", "order-temperature"]
        assert app.changes[-1].params == params

    run(body)


def test_panel_fits_80x24() -> None:
    async def body(pilot: Pilot[Any], app: PanelHost) -> None:
        open_all(app)
        await pilot.pause()
        panel = app.panel
        assert panel.size.width <= 36
        assert panel.virtual_size.width <= panel.scrollable_content_region.width  # no sideways scroll
        for field in panel.query(StepInput):
            assert field.region.width == 0 or field.region.width >= 6, field.id

    run(body)


def test_bias_text_round_trip() -> None:
    bias = {198: -math.inf, 13: 2.0, 7: -1.5}
    assert parse_bias(format_bias(bias)) == bias
    assert parse_bias("5 = ban, 6=+3") == {5: -math.inf, 6: 3.0}


def test_snapshot_all_sections_open(snap_compare: Compare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, PanelHost)
        open_all(app)
        app.panel.set_token_text(lambda token: {198: "\n", 13: "."}.get(token, "?"))
        for widget in app.query("Input, TextArea"):
            widget.cursor_blink = False  # type: ignore[attr-defined]
        await pilot.pause()

    params = SamplingParams(logit_bias={198: -math.inf, 13: 2.0}, typical_p=0.9, dry_multiplier=0.8)
    assert snap_compare(PanelHost(params), terminal_size=(40, 120), run_before=run_before)


@pytest.mark.real_model
def test_a_grammar_llama_cpp_cannot_parse_is_refused_inline(engine: LlamaEngine) -> None:
    async def body(pilot: Pilot[Any], app: PanelHost) -> None:
        panel = app.panel
        panel.set_token_text(engine.token_text, n_vocab=engine.info.n_vocab, check=engine.params_problem)
        open_all(app)
        await pilot.pause()
        good = 'root ::= "yes" | "no"'
        panel.query_one("#field-grammar", TextArea).load_text(good)
        panel.query_one("#apply-constraint", Button).press()
        await pilot.pause()
        assert panel.params.grammar == good and len(app.changes) == 1
        panel.query_one("#field-grammar", TextArea).load_text('root ::= "a"\nb ::= ( "c" \n')
        panel.query_one("#apply-constraint", Button).press()
        await pilot.pause()
        assert panel.errors["grammar"] == "grammar error (line 2, column 12): expecting ')'"
        shown = str(panel.query_one("#error-grammar").render())
        assert "line 2, column 12" in shown and "(not applied)" in shown
        assert panel.params.grammar == good and len(app.changes) == 1  # the running grammar stays
        panel.query_one("#field-grammar", TextArea).load_text("")
        panel.query_one("#field-json_schema", TextArea).load_text(
            '{"$ref": "https://example.invalid/s.json"}'
        )
        panel.query_one("#apply-constraint", Button).press()
        await pilot.pause()
        assert panel.errors["json_schema"].startswith("The JSON schema cannot be turned into a grammar")
        assert panel.params.grammar == good and len(app.changes) == 1

    run(body, size=(80, 70))
