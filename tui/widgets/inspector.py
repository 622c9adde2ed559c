"""The token inspector: the candidates behind one token, what each sampler did, what-if and branch.

For the selected token it shows the top-N candidates the engine stored (token text with visible
whitespace, probability at temperature 1, cumulative probability, probability of being drawn
after the samplers and the temperature, a bar, and which sampler cut it), the chosen token, the
parameters in force and the entropy. The what-if fields (temperature, top-k, top-p, min-p)
recompute that step from the stored logits without generating (``tui.engine.whatif``). ``b``
(or the button) asks to continue the reply from the highlighted candidate instead.

All token text is model output: it only ever goes into a ``rich.text.Text`` as plain text.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Label, Static

from settings.sampling import TEMPERATURE_MAX, TOP_K_MAX, SamplingParams
from tui.core.text import one_line, token_display
from tui.engine.events import CutBy, TokenEvent
from tui.engine.whatif import (
    CandidateRow,
    StepWhatIf,
    WhatIfParams,
    actual_step,
    outside_candidate,
    repeat_penalty_ids,
    what_if,
)
from tui.widgets.confidence_strip import shown_p

BAR_WIDTH = 10
EIGHTHS = " ▏▎▍▌▋▊▉"
CUT_LABELS: dict[CutBy, str] = {
    CutBy.GREEDY: "greedy",
    CutBy.TOP_K: "top-k",
    CutBy.TOP_P: "top-p",
    CutBy.MIN_P: "min-p",
    CutBy.BANNED: "banned",
    CutBy.GRAMMAR: "grammar",
    CutBy.TOP_N_SIGMA: "top-n-sigma",
    CutBy.TYPICAL: "typical-p",
    CutBy.XTC: "XTC",
    CutBy.MIROSTAT: "mirostat",
    CutBy.TEMPERATURE: "temp 0",
}
STAGE_LABELS: dict[str, str] = {
    "logit_bias": "bias",
    "grammar": "grammar",
    "penalties": "penalties",
    "dry": "DRY",
    "top_n_sigma": "top-n-sigma",
    "top_k": "top-k",
    "typ_p": "typical",
    "top_p": "top-p",
    "min_p": "min-p",
    "xtc": "XTC",
    "temperature": "temp",
    "mirostat": "mirostat",
    "greedy": "greedy",
}
"""Short names of the chain's stages, for the survivors line."""
BOOST_STEP = 2.0
"""How much + / - raise or lower a token's logit bias."""
TOKEN_WIDTH = 12
DRAWN = "#66bb6a"
RAW = "#5c6773"
WHITESPACE = "#8a94a6"


def token_label(text: str, width: int = TOKEN_WIDTH) -> Text:
    """A token's text for a table cell: whitespace as faint ␣ → ↵, controls made inert, cut to ``width``."""
    label = Text(no_wrap=True, overflow="ellipsis")
    for fragment, is_marker in token_display(text):
        fragment = fragment.replace("\n", "")
        label.append(fragment, WHITESPACE if is_marker else "")
    if label.cell_len > width:
        label.truncate(width - 1)
        label.append("…", "dim")
    return label


def bar(p_drawn: float, p_raw: float, width: int = BAR_WIDTH, *, cut: bool = False) -> Text:
    """A bar of the draw probability (bright) over the temperature-1 one (faint): the lecture figure."""
    text = Text(no_wrap=True)
    drawn_eighths = round(min(max(p_drawn, 0.0), 1.0) * width * 8)
    raw_cells = math.ceil(shown_p(p_raw) * width - 1e-9)
    full, part = divmod(drawn_eighths, 8)
    text.append("█" * full, DRAWN)
    used = full
    if part:
        text.append(EIGHTHS[part], DRAWN)
        used += 1
    if raw_cells > used:
        text.append("░" * (raw_cells - used), Style(color=RAW, strike=cut))
        used = raw_cells
    text.append(" " * (width - used))
    return text


def cut_label(row: CandidateRow) -> Text:
    """What happened to a candidate: kept, or the sampler that cut it (``?`` when not certain),
    and ``rep`` when the repeat penalty lowered it."""
    unsure = "?" if row.uncertain else ""
    if row.cut_by is None:
        text = Text("kept" + unsure, DRAWN)
    elif row.cut_by is CutBy.GRAMMAR:
        text = Text("not in grammar" + unsure, "#e57373")
    elif row.cut_by is CutBy.BANNED:
        text = Text("banned" + unsure, "bold #e57373")
    else:
        text = Text("cut " + CUT_LABELS[row.cut_by] + unsure, "#e57373")
    if row.penalized:
        text.append(" rep", "#ce93d8")
    return text


def describe_params(params: SamplingParams | None, version: int, seed: int | None) -> Text:
    """The parameters in force for a token, in one line."""
    text = Text(no_wrap=False)
    text.append(f"params v{version}: ", "dim")
    if params is None:
        text.append("unknown (not recorded)", "italic")
        return text
    if params.is_greedy:
        text.append("greedy (arg-max)", "bold")
        if params.mode.value == "sample":
            text.append(" (temperature 0)")
    else:
        text.append(
            f"sample · T {params.temperature:g} · top-k {params.top_k or 'off'} · "
            f"top-p {params.top_p:g} · min-p {params.min_p:g}"
        )
    if params.repeat_penalty != 1.0:
        text.append(f" · repeat {params.repeat_penalty:g}/{params.repeat_last_n}")
    extras = [f"{name} {value}" for name, value in _extras(params)]
    if extras:
        text.append(" · " + " · ".join(extras))
    if seed is not None and seed >= 0 and not params.is_greedy:
        text.append(f" · seed {seed}")
    return text


def _extras(params: SamplingParams) -> list[tuple[str, str]]:
    """The samplers beyond the classic ones that are on, as (name, setting)."""
    p = params
    out: list[tuple[str, str]] = []
    sampling = not p.is_greedy
    if sampling and p.mirostat:
        out.append((f"mirostat v{int(p.mirostat)}", f"τ {p.mirostat_tau:g} η {p.mirostat_eta:g}"))
    if sampling and p.typical_p < 1.0:
        out.append(("typical", f"{p.typical_p:g}"))
    if sampling and p.top_n_sigma > 0.0:
        out.append(("top-n-sigma", f"{p.top_n_sigma:g}"))
    if sampling and p.xtc_probability > 0.0:
        out.append(("XTC", f"{p.xtc_probability:g}@{p.xtc_threshold:g}"))
    if sampling and p.dynatemp_range > 0.0:
        out.append(("dyn T", f"±{p.dynatemp_range:g}"))
    if p.presence_penalty or p.frequency_penalty:
        out.append(("pres/freq", f"{p.presence_penalty:g}/{p.frequency_penalty:g}"))
    if p.dry_multiplier > 0.0:
        out.append(("DRY", f"{p.dry_multiplier:g}"))
    if p.logit_bias:
        bans = len(p.banned)
        boosts = len(p.logit_bias) - bans
        out.append(("bias", f"{boosts} + {bans} banned" if bans else f"{boosts}"))
    if p.has_constraint:
        out.append(("grammar" if p.grammar.strip() else "JSON schema", "on"))
    return out


def stages_line(stages: tuple[tuple[str, int], ...]) -> Text:
    """The chain as it ran for a token: each stage and how many tokens it left."""
    text = Text()
    text.append("chain ", "dim")
    for i, (name, kept) in enumerate(stages):
        if i:
            text.append(" → ", "dim")
        text.append(STAGE_LABELS.get(name, name) + " ", "")
        text.append(f"{kept}", "bold")
    return text


@dataclass(frozen=True, slots=True)
class WhatIfField:
    """One what-if input: which parameter, how it steps, its bounds."""

    name: str
    label: str
    step: float
    low: float
    high: float
    integer: bool


WHATIF_FIELDS: tuple[WhatIfField, ...] = (
    WhatIfField("temperature", "T", 0.1, 0.0, TEMPERATURE_MAX, False),
    WhatIfField("top_k", "top-k", 1, 0, TOP_K_MAX, True),
    WhatIfField("top_p", "top-p", 0.05, 0.01, 1.0, False),
    WhatIfField("min_p", "min-p", 0.01, 0.0, 1.0, False),
)


def parse_field(spec: WhatIfField, raw: str) -> float | int | None:
    """The value typed in a what-if field, or None when it is not a valid one."""
    try:
        value: float | int = int(raw) if spec.integer else float(raw)
    except ValueError:
        return None
    if math.isnan(value) or not spec.low <= value <= spec.high:
        return None
    if spec.name == "top_p" and value <= 0:
        return None
    return value


class WhatIfInput(Input):
    """A what-if number: type it, or step it with up/down."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "step(1)", "Step up", show=False, id="inspector.step_up", tooltip="Increase"),
        Binding("down", "step(-1)", "Step down", show=False, id="inspector.step_down", tooltip="Decrease"),
    ]

    def __init__(self, spec: WhatIfField) -> None:
        super().__init__(id=f"whatif-{spec.name}", compact=True)
        self.spec = spec
        self.tooltip = (
            f"What-if {spec.label} ({spec.low:g} to {spec.high:g}); ↑/↓ step. Nothing is generated."
        )

    def action_step(self, direction: int) -> None:
        """Step the value up or down, within its bounds."""
        spec = self.spec
        current = parse_field(spec, self.value)
        base = float(current) if current is not None else spec.low
        new = min(max(base + direction * spec.step, spec.low), spec.high)
        self.value = str(int(new)) if spec.integer else f"{round(new, 4):g}"
        self.cursor_position = len(self.value)


def format_field(spec: WhatIfField, params: WhatIfParams) -> str:
    """The text a what-if field shows for ``params``."""
    value = getattr(params, spec.name)
    return str(int(value)) if spec.integer else f"{value:g}"


class Inspector(Vertical):
    """The candidates behind the selected token, a what-if for that step, and branching."""

    BORDER_TITLE = "Inspector"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="inspector.close", tooltip="Close the inspector"),
        Binding("b", "branch", "Branch", id="inspector.branch",
                tooltip="Continue the reply from the highlighted candidate instead"),
        Binding("r", "reset_whatif", "Reset what-if", id="inspector.reset",
                tooltip="Back to the parameters that generated this token"),
        Binding("x", "bias('ban')", "Ban token", id="inspector.ban",
                tooltip="Ban the highlighted candidate for the rest of the chat (logit bias -inf)"),
        Binding("plus,equals_sign", "bias('up')", "Boost", id="inspector.boost",
                tooltip=f"Raise the highlighted candidate's logit bias by {BOOST_STEP:g}"),
        Binding("minus", "bias('down')", "Lower", id="inspector.lower",
                tooltip=f"Lower the highlighted candidate's logit bias by {BOOST_STEP:g}"),
    ]  # fmt: skip

    DEFAULT_CSS = """
    Inspector {
        width: 70;
        height: 1fr;
        border: round $accent;
        border-title-color: $text;
        padding: 0 1;
    }
    Inspector #inspector-head { height: auto; }
    Inspector #inspector-table { height: auto; max-height: 22; margin: 1 0 0 0; }
    Inspector #inspector-summary { height: auto; }
    Inspector #whatif-row { height: 1; margin: 1 0 0 0; }
    Inspector #whatif-row Label { width: auto; padding: 0 1 0 0; color: $text-muted; }
    Inspector #whatif-row Input { width: 7; margin: 0 1 0 0; }
    Inspector #whatif-row Input.invalid { background: $error 40%; }
    Inspector #inspector-buttons { height: auto; margin: 1 0 0 0; }
    Inspector #inspector-buttons Button { margin: 0 1 0 0; min-width: 10; }
    Inspector #inspector-keys { height: auto; color: $text-muted; }
    """

    class BranchRequested(Message):
        """Continue reply ``reply_id`` with ``token_id`` at position ``index`` instead of what was drawn."""

        def __init__(self, inspector: Inspector, reply_id: int, index: int, token_id: int) -> None:
            super().__init__()
            self.inspector = inspector
            self.reply_id = reply_id
            self.index = index
            self.token_id = token_id

        @property
        def control(self) -> Inspector:
            """The inspector that asked."""
            return self.inspector

    class Closed(Message):
        """The user closed the inspector."""

    class BiasRequested(Message):
        """Ban ``token_id`` (``bias`` = -inf) or change its logit bias by ``bias``, for the chat."""

        def __init__(self, inspector: Inspector, token_id: int, text: str, bias: float) -> None:
            super().__init__()
            self.inspector = inspector
            self.token_id = token_id
            self.text = text
            """The token's text (for the confirmation)."""
            self.bias = bias
            """-inf: ban; otherwise added to the token's current bias."""

        @property
        def control(self) -> Inspector:
            """The inspector that asked."""
            return self.inspector

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.reply_id: int | None = None
        self.event: TokenEvent | None = None
        self.params: SamplingParams | None = None
        """The parameters in force for the token shown."""
        self.actual: StepWhatIf | None = None
        """The step as it happened (the engine's numbers)."""
        self.whatif: WhatIfParams | None = None
        """The what-if settings, or None to show the step as it happened."""
        self.step: StepWhatIf | None = None
        """What the table shows now (``actual`` or the what-if)."""
        self.note: str = ""
        """An extra line about the token (e.g. that it was picked for a branch)."""
        self._seed: int | None = None
        self.penalized: frozenset[int] = frozenset()
        """Token ids the repeat penalty applied to at the step shown (the reply's recent tokens)."""
        self._filling = False

    def compose(self) -> ComposeResult:
        """Head, candidate table, summary, what-if fields, buttons, keys (the confidence strip is
        over the token view, beside it)."""
        yield Static(id="inspector-head")
        table: DataTable[Text] = DataTable(id="inspector-table", cursor_type="row", cell_padding=0)
        yield table
        yield Static(id="inspector-summary")
        with Horizontal(id="whatif-row"):
            yield Label("what-if")
            for spec in WHATIF_FIELDS:
                yield Label(spec.label)
                yield WhatIfInput(spec)
        with Horizontal(id="inspector-buttons"):
            yield Button("Branch here", id="inspector-branch", compact=True,
                         tooltip="Continue the reply from the highlighted candidate (b)")  # fmt: skip
            yield Button("Reset what-if", id="whatif-reset", compact=True,
                         tooltip="Back to the parameters that generated this token (r)")  # fmt: skip
        yield Static(
            Text("↑/↓ candidate · b branch · x ban · +/- bias · r reset · [ ] branches · u least sure · "
                 "i/esc close"),
            id="inspector-keys",
        )

    def on_mount(self) -> None:
        """Say what to do until a token is selected."""
        self._refresh_step(keep_cursor=False)

    @property
    def table(self) -> DataTable[Text]:
        """The candidate table."""
        return self.query_one("#inspector-table", DataTable)

    # -- what is shown ---------------------------------------------------------------------
    def show_token(
        self,
        reply_id: int,
        event: TokenEvent,
        params: SamplingParams | None,
        *,
        events: tuple[TokenEvent, ...] | list[TokenEvent] = (),
        seed: int | None = None,
        note: str = "",
    ) -> None:
        """Show token ``event`` of reply ``reply_id``, generated with ``params``."""
        self.reply_id = reply_id
        self.event = event
        self.params = params
        self.note = note
        self._seed = seed
        self.border_title = f"Inspector · token #{event.index}"
        history = [e.token_id for e in events[: event.index]]
        self.penalized = repeat_penalty_ids(history, params.repeat_last_n) if params else frozenset()
        self.actual = actual_step(event, params, self.penalized) if event.candidates else None
        if self.whatif is None:
            self._fill_fields(self.actual.params if self.actual else None)
        self._refresh_step(keep_cursor=False)

    def set_whatif(self, whatif: WhatIfParams | None) -> None:
        """Show the step under ``whatif`` (None: as it happened)."""
        if self.actual is not None and whatif == self.actual.params:
            whatif = None
        self.whatif = whatif
        self._refresh_step(keep_cursor=True)

    def _fill_fields(self, params: WhatIfParams | None) -> None:
        self._filling = True
        try:
            for spec in WHATIF_FIELDS:
                field = self.query_one(f"#whatif-{spec.name}", WhatIfInput)
                field.value = format_field(spec, params) if params is not None else ""
                field.remove_class("invalid")
        finally:
            self._filling = False

    def _refresh_step(self, *, keep_cursor: bool) -> None:
        event = self.event
        head = self.query_one("#inspector-head", Static)
        summary = self.query_one("#inspector-summary", Static)
        table = self.table
        cursor = table.cursor_row if keep_cursor else None
        table.clear(columns=True)
        if event is None:
            head.update(Text("Select a token in the token view (←/→ or a click).", "italic"))
            summary.update("")
            self.step = None
            return
        head.update(self._head(event))
        if self.actual is None:
            self.step = None
            summary.update(Text("No candidates were recorded for this token (top_n = 0).", "italic"))
            return
        if self.whatif is None:
            self.step = self.actual
        else:
            self.step = what_if(
                event.candidates,
                self.whatif,
                event.token_id,
                penalized=self.penalized,
                outside=outside_candidate(event),
            )
        self._fill_table(self.step)
        summary.update(self._summary(self.step))
        if cursor is None:
            chosen = self.step.chosen
            cursor = chosen.rank if chosen is not None else 0
        table.move_cursor(row=min(cursor, table.row_count - 1), animate=False)

    def _head(self, event: TokenEvent) -> Text:
        text = Text()
        text.append("token ", "dim")
        text.append_text(token_label(event.piece or event.text, 24))
        text.append(f"  id {event.token_id}", "dim")
        text.append("\np T=1 ", "dim")
        text.append(f"{event.p_raw:.4f}", "bold")
        text.append(" · p drawn ", "dim")
        text.append(f"{event.p_final:.4f}", "bold")
        text.append(" · entropy ", "dim")
        text.append(f"{event.entropy:.3f} bits", "bold")
        text.append(" (T=1, full vocab)", "dim")
        text.append("\n")
        text.append_text(describe_params(self.params, event.params_version, self._seed))
        if self.note:
            text.append("\n")
            text.append(self.note, "bold #ffb300")
        return text

    def _fill_table(self, step: StepWhatIf) -> None:
        table = self.table
        p_header = "p T=1"
        t = step.params.temperature
        drawn_header = "p drawn" if step.params.is_greedy else f"p T={t:g}"
        if not step.exact:
            drawn_header = "≈" + drawn_header
        table.add_column(Text(" "), key="mark", width=1)
        table.add_column(Text("token"), key="token", width=TOKEN_WIDTH + 1)
        table.add_column(Text(p_header, justify="right"), key="p_raw", width=7)
        table.add_column(Text("cum", justify="right"), key="cum", width=7)
        table.add_column(Text(drawn_header, justify="right"), key="p_final", width=9)
        table.add_column(Text(" bar"), key="bar", width=BAR_WIDTH + 2)
        table.add_column(Text("sampler"), key="cut", width=16)
        actual = self.actual
        for row in step.rows:
            cut = row.cut_by is not None
            mark = Text("▶", "bold #ffd54f") if row.chosen else Text(" ")
            status = cut_label(row)
            if actual is not None and step is not actual and row.rank < len(actual.rows):
                before = actual.rows[row.rank]
                if (before.cut_by is None) != (row.cut_by is None):
                    status.append(" ▲" if row.cut_by is None else " ▼", "bold #ffb300")
            p_style = "dim strike" if cut else "bold"
            table.add_row(
                mark,
                token_label(row.text),
                Text(f"{row.p_raw:.4f}", justify="right"),
                Text("?" if row.outside else f"{row.cum_raw:.4f}", justify="right"),
                Text(f"{row.p_final:.4f}" if not cut else "—", style=p_style, justify="right"),
                Text(" ").append_text(bar(row.p_final, row.p_raw, cut=cut)),
                status,
                key=str(row.rank),
            )

    def _summary(self, step: StepWhatIf) -> Text:
        text = Text()
        n = step.n
        if self.whatif is not None:
            text.append("WHAT-IF", "bold reverse #ffb300")
            text.append(" nothing generated · ", "#ffb300")
        text.append(f"kept {step.kept} of the top {n}")
        if not step.params.is_greedy:
            shown_mass = sum(r.p_final for r in step.rows)
            bound = "≥ " if shown_mass < 1.0 - 1e-6 else ""  # survivors past the rows shown
            text.append(f" · draw entropy {bound}{step.draw_entropy_bits:.3f} bits")
        text.append(f"\ntop {n} hold {step.coverage:.1%} of the T=1 probability")
        if step is self.actual and self.event is not None and self.event.stages:
            text.append("\n")
            text.append_text(stages_line(self.event.stages))
        if step is self.actual:
            text.append(" · p drawn: the engine's own numbers", "dim")
        elif step.params.unknown:
            text.append("\n≈ unknown: " + ", ".join(step.params.unknown), "#ffb300")
            text.append(" are left out (the stored top N can't say what they would do)", "#ffb300")
        elif not step.exact:
            text.append("\n≈ survivors may go on past the top ", "#ffb300")
            text.append(f"{n}: p renormalised within the rows shown", "#ffb300")
        chosen = step.chosen
        if chosen is not None and chosen.outside:
            text.append(f"\nthe chosen token was not in the top {n}: shown last (rank unknown)", "#ffb300")
        if self.whatif is not None and self.actual is not None:
            pairs = zip(self.actual.rows, step.rows, strict=True)
            if any((a.cut_by is None) != (b.cut_by is None) for a, b in pairs):
                text.append("\n▲ kept now, was cut · ▼ cut now, was kept", "#ffb300")
        if step is self.actual and step.params.is_greedy:
            text.append("\ngreedy: change a what-if field to see how sampling would go", "dim")
        if any(r.uncertain for r in step.rows):
            text.append("\n? = not sure: depends on tokens past the top N", "#ffb300")
        if any(r.penalized for r in step.rows):
            params = self.params
            last_n = f", last {params.repeat_last_n} reply tokens" if params else ""
            text.append(
                f"\nrep = lowered by the repeat penalty ({step.params.repeat_penalty:g}{last_n})", "#ce93d8"
            )
        if self.whatif is not None and self.actual is not None and self.actual.chosen is not None:
            was = self.actual.chosen
            text.append("\nchosen token: ")
            if chosen is None or chosen.cut_by is not None:
                label = CUT_LABELS[chosen.cut_by] if chosen and chosen.cut_by else "?"
                text.append(f"would be cut by {label}", "bold #e57373")
            else:
                text.append(f"p {chosen.p_final:.4f}", "bold")
            text.append(f" (was {was.p_final:.4f})", "dim")
        return text

    # -- input -----------------------------------------------------------------------------
    def on_input_changed(self, message: Input.Changed) -> None:
        """A what-if field changed: recompute when every field is valid."""
        message.stop()
        if self._filling or self.actual is None:
            return
        values: dict[str, float | int] = {}
        for spec in WHATIF_FIELDS:
            field = self.query_one(f"#whatif-{spec.name}", WhatIfInput)
            value = parse_field(spec, field.value)
            field.set_class(value is None, "invalid")
            if value is not None:
                values[spec.name] = value
        if len(values) < len(WHATIF_FIELDS):
            return
        base = self.actual.params
        whatif = WhatIfParams(
            float(values["temperature"]),
            int(values["top_k"]),
            float(values["top_p"]),
            float(values["min_p"]),
            repeat_penalty=base.repeat_penalty,
            unknown=base.unknown,
        )
        if dataclasses.replace(base, greedy=False) == whatif:
            whatif = base  # the fields say what generated the token: show it as it happened
        self.set_whatif(whatif)

    def on_input_submitted(self, message: Input.Submitted) -> None:
        """Enter in a what-if field: nothing more to do (changes apply as typed)."""
        message.stop()

    def on_button_pressed(self, message: Button.Pressed) -> None:
        """Branch or reset."""
        message.stop()
        if message.button.id == "inspector-branch":
            self.action_branch()
        elif message.button.id == "whatif-reset":
            self.action_reset_whatif()

    def action_branch(self) -> None:
        """Ask to continue the reply from the highlighted candidate."""
        if self.event is None or self.step is None or self.reply_id is None:
            return
        row = self.step.rows[min(max(self.table.cursor_row, 0), self.step.n - 1)]
        self.post_message(self.BranchRequested(self, self.reply_id, self.event.index, row.token_id))

    def action_bias(self, how: str) -> None:
        """Ban (``ban``), boost (``up``) or lower (``down``) the highlighted candidate."""
        row = self.highlighted_row()
        if row is None:
            return
        bias = -math.inf if how == "ban" else BOOST_STEP if how == "up" else -BOOST_STEP
        self.post_message(self.BiasRequested(self, row.token_id, row.text, bias))

    def action_reset_whatif(self) -> None:
        """Back to the step as it happened."""
        self.whatif = None
        self._fill_fields(self.actual.params if self.actual else None)
        self._refresh_step(keep_cursor=True)

    def action_close(self) -> None:
        """Close the inspector."""
        self.post_message(self.Closed())

    def highlighted_row(self) -> CandidateRow | None:
        """The candidate under the table's cursor."""
        if self.step is None or not self.step.rows:
            return None
        return self.step.rows[min(max(self.table.cursor_row, 0), self.step.n - 1)]

    def describe(self) -> str:
        """A one-line description of the token shown (for notifications)."""
        if self.event is None:
            return ""
        return f"token #{self.event.index} {one_line(self.event.text, 20)!r}"


__all__ = ["Inspector", "WhatIfInput", "bar", "describe_params", "token_label"]
