"""The live sampling panel: every SamplingParams field, steppable and typable, plus presets.

A valid edit makes a new frozen SamplingParams (:func:`replace_params`) and posts
:class:`SamplingPanel.ParamsChanged`; the app pushes it into the LiveParams the token loop reads
before its next token. An invalid value shows an inline message under the field and is not
applied. Greedy mode disables the fields greedy decoding ignores.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from pydantic import ValidationError
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Collapsible, Input, Label, OptionList, Select, Static, Switch, TextArea
from textual.widgets.option_list import Option

from settings.sampling import (
    BAN_WORDS,
    DEFAULT_SAMPLER_ORDER,
    MAX_NEW_TOKENS_MAX,
    REPEAT_PENALTY_MAX,
    SEED_MAX,
    TEMPERATURE_MAX,
    TOP_K_MAX,
    Mirostat,
    SamplerName,
    SamplingMode,
    SamplingParams,
    bias_problem,
    replace_params,
)

Applies = Callable[[SamplingParams], bool]


def _always(_: SamplingParams) -> bool:
    return True


def _sampling(p: SamplingParams) -> bool:
    """Draws at random (greedy mode takes the arg-max)."""
    return p.mode is not SamplingMode.GREEDY


def _truncating(p: SamplingParams) -> bool:
    """The truncation samplers run: sampling, mirostat off."""
    return _sampling(p) and p.mirostat is Mirostat.OFF


def _penalising(p: SamplingParams) -> bool:
    """Penalties and DRY run (greedy too; mirostat replaces them, as in llama.cpp)."""
    return p.mirostat is Mirostat.OFF or p.mode is SamplingMode.GREEDY


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """How one numeric parameter is edited."""

    name: str
    label: str
    kind: type[int] | type[float]
    step: float
    big_step: float
    low: float
    """Smallest value stepping reaches (for an open bound, the first value above it)."""
    high: float
    allowed: str
    """The allowed range in words, for the inline error."""
    greedy_ignores: bool
    tooltip: str
    section: str = "reply"
    """Which panel section holds it: reply, truncation, penalties, temperature."""
    applies: Applies = _always
    """Whether the field does anything with these parameters (else it is shown off)."""


def _spec(name: str, label: str, kind: type[int] | type[float], step: float, big: float, low: float,
          high: float, allowed: str, section: str, applies: Applies, tooltip: str) -> FieldSpec:  # fmt: skip
    greedy_ignores = section in ("truncation", "temperature")
    return FieldSpec(
        name, label, kind, step, big, low, high, allowed, greedy_ignores, tooltip, section, applies
    )


NUMERIC_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("max_new_tokens", "max new tokens", int, 16, 256, 1, MAX_NEW_TOKENS_MAX,
              f"a whole number from 1 to {MAX_NEW_TOKENS_MAX}", False,
              "A cap on the reply's length in tokens (not a target)."),
    # truncation
    _spec("top_k", "top-k", int, 1, 10, 0, TOP_K_MAX, f"a whole number from 0 (off) to {TOP_K_MAX}",
          "truncation", _truncating, "Keep only the k most likely tokens (0 = off)."),
    _spec("top_p", "top-p", float, 0.01, 0.1, 0.01, 1.0, "a number above 0, at most 1 (1 = off)",
          "truncation", _truncating, "Keep the smallest set of tokens whose probabilities add up to p."),
    _spec("min_p", "min-p", float, 0.01, 0.1, 0.0, 1.0, "a number from 0 (off) to 1",
          "truncation", _truncating, "Drop tokens less likely than min-p times the most likely one."),
    _spec("typical_p", "typical-p", float, 0.01, 0.1, 0.01, 1.0, "a number above 0, at most 1 (1 = off)",
          "truncation", _truncating, "Keep tokens whose surprise is closest to the average, up to mass p."),
    _spec("top_n_sigma", "top-n-sigma", float, 0.1, 1.0, 0.0, 10.0, "a number from 0 (off) to 10",
          "truncation", _truncating, "Keep tokens within n standard deviations of the best logit."),
    _spec("xtc_probability", "XTC chance", float, 0.05, 0.25, 0.0, 1.0, "a number from 0 (off) to 1",
          "truncation", _truncating, "How often XTC removes the top choices (0 = off)."),
    _spec("xtc_threshold", "XTC threshold", float, 0.01, 0.1, 0.0, 0.5, "a number from 0 to 0.5",
          "truncation", lambda p: _truncating(p) and p.xtc_probability > 0.0,
          "Tokens at least this likely count as top choices for XTC."),
    # penalties
    _spec("repeat_penalty", "repeat penalty", float, 0.05, 0.5, 0.05, REPEAT_PENALTY_MAX,
          f"a number above 0, at most {REPEAT_PENALTY_MAX:g} (1 = off)", "penalties", _penalising,
          "Divides the logits of recently seen tokens: >1 discourages repeats."),
    _spec("repeat_last_n", "repeat last n", int, 8, 64, 0, 4096, "a whole number from 0 (off) to 4096",
          "penalties", _penalising, "How many recent reply tokens the penalties look at."),
    _spec("presence_penalty", "presence pen.", float, 0.05, 0.5, -2.0, 2.0, "a number from -2 to 2 (0 = off)",
          "penalties", _penalising, "Subtracted once from every recently used token's logit."),
    _spec("frequency_penalty", "frequency pen.", float, 0.05, 0.5, -2.0, 2.0,
          "a number from -2 to 2 (0 = off)", "penalties", _penalising,
          "Subtracted once per use from a recently used token's logit."),
    _spec("dry_multiplier", "DRY multiplier", float, 0.05, 0.5, 0.0, 5.0, "a number from 0 (off) to 5",
          "penalties", _penalising, "Strength of DRY's penalty on extending a repeated phrase (0 = off)."),
    _spec("dry_base", "DRY base", float, 0.05, 0.25, 1.0, 4.0, "a number from 1 to 4",
          "penalties", lambda p: _penalising(p) and p.dry_multiplier > 0.0,
          "DRY's penalty grows as base ** (repeat length - allowed length)."),
    _spec("dry_allowed_length", "DRY allowed", int, 1, 5, 1, 100, "a whole number from 1 to 100",
          "penalties", lambda p: _penalising(p) and p.dry_multiplier > 0.0,
          "Repeats up to this many tokens are not penalised by DRY."),
    _spec("dry_last_n", "DRY last n", int, 16, 256, -1, 32768, "a whole number from -1 (context) to 32768",
          "penalties", lambda p: _penalising(p) and p.dry_multiplier > 0.0,
          "How many recent tokens DRY scans for repeats (-1 = the whole context)."),
    # temperature
    _spec("temperature", "temperature", float, 0.05, 0.5, 0.0, TEMPERATURE_MAX,
          f"a number from 0 to {TEMPERATURE_MAX:g}", "temperature", _sampling,
          "Divides the logits: <1 sharpens, >1 flattens the distribution; 0 = greedy."),
    _spec("dynatemp_range", "dyntemp range", float, 0.05, 0.5, 0.0, TEMPERATURE_MAX,
          f"a number from 0 (off) to {TEMPERATURE_MAX:g}", "temperature", _truncating,
          "Dynamic temperature: moves within temperature ± range with the entropy (0 = off)."),
    _spec("dynatemp_exponent", "dyntemp exp.", float, 0.1, 1.0, 0.0, 10.0, "a number from 0 to 10",
          "temperature", lambda p: _truncating(p) and p.dynatemp_range > 0.0,
          "How the entropy maps to the dynamic temperature (1 = linearly)."),
    _spec("mirostat_tau", "mirostat tau", float, 0.5, 2.0, 0.5, 20.0, "a number above 0, at most 20",
          "temperature", lambda p: _sampling(p) and p.mirostat is not Mirostat.OFF,
          "Mirostat's target surprise in bits per token (lower = more focused)."),
    _spec("mirostat_eta", "mirostat eta", float, 0.01, 0.1, 0.01, 1.0, "a number above 0, at most 1",
          "temperature", lambda p: _sampling(p) and p.mirostat is not Mirostat.OFF,
          "How fast mirostat adapts toward tau."),
    _spec("seed", "seed", int, 1, 100, -1, SEED_MAX, f"a whole number from -1 (random) to {SEED_MAX}",
          "temperature", _sampling, "Random seed for sampling; -1 = a fresh one per reply."),
)  # fmt: skip

SECTIONS: tuple[tuple[str, str, bool], ...] = (
    ("truncation", "Truncation", False),
    ("penalties", "Penalties", False),
    ("temperature", "Temperature", False),
    ("constraints", "Constraints", True),
    ("order", "Order", True),
)
"""(id, title, folded at start) of the panel's foldable sections."""

SAMPLER_LABELS: dict[SamplerName, str] = {
    SamplerName.PENALTIES: "penalties",
    SamplerName.DRY: "DRY",
    SamplerName.TOP_N_SIGMA: "top-n-sigma",
    SamplerName.TOP_K: "top-k",
    SamplerName.TYP_P: "typical-p",
    SamplerName.TOP_P: "top-p",
    SamplerName.MIN_P: "min-p",
    SamplerName.XTC: "XTC",
    SamplerName.TEMPERATURE: "temperature",
}


def sampler_is_on(params: SamplingParams, name: SamplerName) -> bool:
    """Whether a sampler of the order does anything with these parameters."""
    p = params
    match name:
        case SamplerName.PENALTIES:
            return p.repeat_last_n != 0 and (
                p.repeat_penalty != 1.0 or p.presence_penalty != 0.0 or p.frequency_penalty != 0.0
            )
        case SamplerName.DRY:
            return p.dry_multiplier > 0.0 and p.dry_last_n != 0
        case SamplerName.TOP_N_SIGMA:
            return p.top_n_sigma > 0.0 and _truncating(p)
        case SamplerName.TOP_K:
            return p.top_k > 0 and _truncating(p)
        case SamplerName.TYP_P:
            return p.typical_p < 1.0 and _truncating(p)
        case SamplerName.TOP_P:
            return p.top_p < 1.0 and _truncating(p)
        case SamplerName.MIN_P:
            return p.min_p > 0.0 and _truncating(p)
        case SamplerName.XTC:
            return p.xtc_probability > 0.0 and _truncating(p)
        case SamplerName.TEMPERATURE:
            return _truncating(p)
    raise AssertionError(name)  # pragma: no cover


def parse_bias(text: str) -> dict[int, float]:
    """``"198=-inf, 13=+2"`` (``ban`` for -inf) as {token id: bias}; ValueError with a message."""
    result: dict[int, float] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        token_text, sep, bias_text = item.partition("=")
        if not sep:
            raise ValueError(f"'{item}': write token id = bias, e.g. 198=-inf or 13=2")
        try:
            token = int(token_text.strip())
        except ValueError:
            raise ValueError(f"'{token_text.strip()}' is not a token id (a whole number)") from None
        word = bias_text.strip().lower()
        try:
            bias = -math.inf if word in BAN_WORDS else float(word)
        except ValueError:
            raise ValueError(f"'{bias_text.strip()}' is not a bias (a number, or -inf to ban)") from None
        result[token] = bias
    return result


def format_bias(bias: dict[int, float]) -> str:
    """The inverse of :func:`parse_bias`."""
    return ", ".join(f"{t}=" + ("-inf" if b == -math.inf else f"{b:g}") for t, b in bias.items())


def format_value(spec: FieldSpec, value: float) -> str:
    """The text a field shows for ``value``."""
    if spec.kind is int:
        return str(int(value))
    return str(float(value))  # shortest text that reads back as the same float


_ESCAPES = {"n": "\n", "t": "\t", "s": " ", ",": ",", "\\": "\\"}


def parse_stop_strings(text: str) -> tuple[str, ...]:
    """Comma-separated stop strings, outer spaces stripped; escapes ``\\n \\t \\s \\, \\\\``."""
    raw_items: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            current.append(char + next(chars, ""))
        elif char == ",":
            raw_items.append("".join(current))
            current = []
        else:
            current.append(char)
    raw_items.append("".join(current))
    items: list[str] = []
    for raw in raw_items:
        raw = raw.strip(" ")
        value = re.sub(r"\\(.?)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), raw)
        if value:
            items.append(value)
    return tuple(items)


def format_stop_strings(stop: tuple[str, ...]) -> str:
    """The inverse of :func:`parse_stop_strings` (outer spaces written as ``\\s``)."""
    formatted: list[str] = []
    for item in stop:
        text = item.replace("\\", "\\\\").replace(",", "\\,").replace("\n", "\\n").replace("\t", "\\t")
        core = text.strip(" ")
        lead = len(text) - len(text.lstrip(" "))
        trail = len(text) - len(text.rstrip(" ")) if core else 0
        formatted.append("\\s" * lead + core + "\\s" * trail)
    return ", ".join(formatted)


class StepInput(Input):
    """A number input: up/down step it, page up/down step it ten times as much."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "step(1)", "Step up", show=False, id="sampling.step_up",
                tooltip="Increase by one step"),
        Binding("down", "step(-1)", "Step down", show=False, id="sampling.step_down",
                tooltip="Decrease by one step"),
        Binding("pageup", "step(10)", "Big step up", show=False, id="sampling.big_up",
                tooltip="Increase by a big step"),
        Binding("pagedown", "step(-10)", "Big step down", show=False, id="sampling.big_down",
                tooltip="Decrease by a big step"),
    ]  # fmt: skip

    def __init__(self, spec: FieldSpec, value: float) -> None:
        super().__init__(format_value(spec, value), id=f"field-{spec.name}", compact=True)
        self.spec = spec
        self.tooltip = f"{spec.tooltip} ↑/↓ step, PgUp/PgDn big step."
        self.last_valid: float = value
        """The last value that was applied (stepping starts here when the text is not a number)."""

    def action_step(self, multiple: int) -> None:
        """Step the value by ``multiple`` steps (big steps for |multiple| >= 10), clamped to the range."""
        spec = self.spec
        try:
            current = float(self.value)
        except ValueError:
            current = self.last_valid
        delta = spec.big_step if abs(multiple) >= 10 else spec.step
        new = current + delta * (1 if multiple > 0 else -1)
        if spec.kind is float:
            new = round(round(new / spec.step) * spec.step, 6)  # on the step grid, no 0.30000000000000004
        new = min(max(new, spec.low), spec.high)
        self.value = format_value(spec, new)
        self.cursor_position = len(self.value)
        self.post_message(self.Stepped(self))

    class Stepped(Message):
        """The value was stepped with a key (applies at once)."""

        def __init__(self, field: StepInput) -> None:
            super().__init__()
            self.input = field

        @property
        def control(self) -> StepInput:
            """The stepped input."""
            return self.input


class SamplingPanel(VerticalScroll):
    """Edits the sampling parameters live; posts ParamsChanged for every valid change."""

    BORDER_TITLE = "Sampling"

    class ParamsChanged(Message):
        """The user changed the parameters (already validated)."""

        def __init__(self, panel: SamplingPanel, params: SamplingParams, field: str | None) -> None:
            super().__init__()
            self.panel = panel
            self.params = params
            self.field = field
            """Which field changed (None for a preset or a reset)."""

        @property
        def control(self) -> SamplingPanel:
            """The panel that sent this message."""
            return self.panel

    class SaveDefaultRequested(Message):
        """The user asked to save the current parameters as the default."""

        def __init__(self, params: SamplingParams) -> None:
            super().__init__()
            self.params = params

    def __init__(
        self,
        params: SamplingParams,
        presets: dict[str, SamplingParams],
        defaults: SamplingParams,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.params = params
        """The parameters currently applied."""
        self.presets = presets
        self.defaults = defaults
        self.errors: dict[str, str] = {}
        """Field name -> inline error currently shown."""
        self.token_text: Callable[[int], str] | None = None
        """How to show a token id as text (set by the app from the loaded model)."""
        self.n_vocab: int | None = None
        """The loaded model's vocabulary size (a bias for a token outside it is refused)."""
        self.check: Callable[[SamplingParams], tuple[str, str] | None] | None = None
        """What the loaded model can't use in some parameters, as (field, message) (its parser's)."""
        self._shown_bias: dict[int, float] | None = None

    def compose(self) -> ComposeResult:
        """Preset picker, mode switch, reply limits, then the foldable sections, buttons."""
        yield Select(
            [(name, name) for name in self.presets],
            prompt="preset…",
            id="preset",
            compact=True,
            tooltip="Load a named parameter set from your settings",
        )
        with Horizontal(id="panel-buttons"):
            yield Button("Reset", id="reset", compact=True, tooltip="Back to the default parameters")
            yield Button(
                "Save default", id="save-default", compact=True, tooltip="Write these to the config file"
            )
        with Horizontal(classes="row"):
            yield Label("greedy", classes="field-label")
            yield Switch(
                value=self.params.mode is SamplingMode.GREEDY,
                id="mode",
                tooltip="Greedy: always take the most likely token (deterministic, tends to repeat)",
            )
        yield Static(
            "greedy takes the top token left after bias, grammar and penalties: "
            "truncation, temperature and seed don't apply",
            id="greedy-note",
        )
        yield from self._fields("reply")
        yield from self._text_field(
            "stop", "stop strings", format_stop_strings(self.params.stop), "e.g. ###, \\n\\n",
            "Comma-separated; the reply ends when one appears. \\n = newline, \\, = comma",
        )  # fmt: skip
        for section, title, folded in SECTIONS:
            with Collapsible(title=title, collapsed=folded, id=f"section-{section}"):
                if section == "constraints":
                    yield from self._constraints()
                elif section == "order":
                    yield from self._order()
                else:
                    if section == "temperature":
                        with Horizontal(classes="row", id="row-mirostat"):
                            yield Label("mirostat", classes="field-label")
                            yield Select(
                                [("off", 0), ("v1", 1), ("v2", 2)],
                                value=int(self.params.mirostat),
                                allow_blank=False,
                                id="field-mirostat",
                                compact=True,
                                tooltip="Mirostat aims at a surprise level (instead of truncation)",
                            )
                    yield from self._fields(section)
                    if section == "penalties":
                        yield from self._text_field(
                            "dry_sequence_breakers", "DRY breakers",
                            format_stop_strings(self.params.dry_sequence_breakers), "e.g. \\n, :",
                            "Strings a DRY repeat never spans (comma-separated, \\n = newline)",
                        )  # fmt: skip

    def _fields(self, section: str) -> ComposeResult:
        for spec in NUMERIC_FIELDS:
            if spec.section != section:
                continue
            with Vertical(classes="field", id=f"row-{spec.name}"):
                with Horizontal(classes="row"):
                    yield Label(spec.label, classes="field-label")
                    yield StepInput(spec, getattr(self.params, spec.name))
                yield Static("", classes="field-error", id=f"error-{spec.name}")

    def _text_field(self, name: str, label: str, value: str, placeholder: str, tooltip: str) -> ComposeResult:
        with Vertical(classes="field", id=f"row-{name}"):
            with Horizontal(classes="row"):
                yield Label(label, classes="field-label")
                yield Input(value, placeholder=placeholder, id=f"field-{name}", compact=True, tooltip=tooltip)
            yield Static("", classes="field-error", id=f"error-{name}")

    def _constraints(self) -> ComposeResult:
        yield from self._text_field(
            "logit_bias", "logit bias", format_bias(self.params.logit_bias), "e.g. 198=-inf, 13=2",
            "token id = bias, comma-separated; -inf bans the token (also from the inspector)",
        )  # fmt: skip
        yield Static(self._bias_lines(), id="bias-list")
        yield Button("Clear biases", id="clear-biases", compact=True, tooltip="Remove every bias and ban")
        for name, label in (("grammar", "GBNF grammar"), ("json_schema", "JSON schema")):
            with Vertical(classes="field", id=f"row-{name}"):
                yield Label(label, classes="constraint-label")
                area = TextArea(getattr(self.params, name), id=f"field-{name}", soft_wrap=True,
                                show_line_numbers=False, compact=True)  # fmt: skip
                area.tooltip = (
                    "The reply must follow this GBNF grammar (root rule: root)"
                    if name == "grammar"
                    else "The reply must be JSON matching this schema (turned into a grammar)"
                )
                yield area
                yield Static("", classes="field-error", id=f"error-{name}")
        yield Button("Apply constraint", id="apply-constraint", compact=True,
                     tooltip="Use the grammar / JSON schema above from the next token")  # fmt: skip

    def _order(self) -> ComposeResult:
        yield Static("runs top to bottom; each sees what the ones above left", id="order-note")
        yield OrderList(id="order-list")
        with Horizontal(id="order-buttons"):
            yield Button("▲ up", id="order-up", compact=True, tooltip="Move the highlighted sampler up")
            yield Button("▼ down", id="order-down", compact=True, tooltip="Move the highlighted sampler down")
            yield Button("default", id="order-default", compact=True, tooltip="llama.cpp's default order")

    def on_mount(self) -> None:
        """Show which controls apply to the initial parameters."""
        self._show_applicable()

    # -- applying ------------------------------------------------------------------------
    def set_params(self, params: SamplingParams, *, announce: bool = True) -> None:
        """Show ``params`` in every field (a preset, a reset, a restored chat) and apply them."""
        changed = params != self.params
        self.params = params
        self.errors.clear()
        for spec in NUMERIC_FIELDS:
            field = self.query_one(f"#field-{spec.name}", StepInput)
            field.last_valid = getattr(params, spec.name)
            field.value = format_value(spec, getattr(params, spec.name))
            self._show_error(spec.name, None)
        self.query_one("#field-stop", Input).value = format_stop_strings(params.stop)
        breakers = format_stop_strings(params.dry_sequence_breakers)
        self.query_one("#field-dry_sequence_breakers", Input).value = breakers
        self.query_one("#field-logit_bias", Input).value = format_bias(params.logit_bias)
        for name in ("stop", "dry_sequence_breakers", "logit_bias", "grammar", "json_schema"):
            self._show_error(name, None)
        for name in ("grammar", "json_schema"):
            area = self.query_one(f"#field-{name}", TextArea)
            if area.text != getattr(params, name):
                area.load_text(getattr(params, name))
        self.query_one("#field-mirostat", Select).value = int(params.mirostat)
        self.query_one("#mode", Switch).value = params.mode is SamplingMode.GREEDY
        self._show_applicable()
        if changed and announce:
            self.post_message(self.ParamsChanged(self, params, None))

    def _apply(self, name: str, value: object) -> None:
        try:
            new = replace_params(self.params, **{name: value})
        except ValidationError as exc:
            self._show_error(name, _first_error(exc))
            return
        self._show_error(name, None)
        if new != self.params:
            self.params = new
            self.post_message(self.ParamsChanged(self, new, name))  # first: the next token uses it
            self._show_applicable()

    def _show_error(self, name: str, message: str | None) -> None:
        errors = self.query(f"#error-{name}").results(Static)
        error = next(errors, None)
        if error is None:  # a field without an error line (the mode switch)
            return
        row = self.query_one(f"#row-{name}")
        if message is None:
            self.errors.pop(name, None)
            error.update("")
            row.remove_class("invalid")
        else:
            self.errors[name] = message
            error.update(Text(f"✗ {message} (not applied)"))  # plain text, never markup
            row.add_class("invalid")

    def _show_applicable(self) -> None:
        """Switch off (visibly) every control that does nothing with the current parameters."""
        params = self.params
        greedy = params.mode is SamplingMode.GREEDY
        self.set_class(greedy, "greedy")
        self.set_class(params.mirostat is not Mirostat.OFF and not greedy, "mirostat")
        for spec in NUMERIC_FIELDS:
            off = not spec.applies(params)
            self.query_one(f"#field-{spec.name}", StepInput).disabled = off
            self.query_one(f"#row-{spec.name}").set_class(off, "disabled")
        breakers_off = not (_penalising(params) and params.dry_multiplier > 0.0)
        self.query_one("#field-dry_sequence_breakers", Input).disabled = breakers_off
        self.query_one("#row-dry_sequence_breakers").set_class(breakers_off, "disabled")
        self.query_one("#field-mirostat", Select).disabled = greedy
        self.query_one("#row-mirostat").set_class(greedy, "disabled")
        if params.logit_bias != self._shown_bias:
            self._shown_bias = dict(params.logit_bias)
            self.query_one("#bias-list", Static).update(self._bias_lines())
        self.query_one("#order-list", OrderList).show(params)
        order_off = params.mirostat is not Mirostat.OFF and not greedy
        note = self.query_one("#order-note", Static)
        if note.has_class("off") != order_off:
            note.update(
                "off: mirostat replaces this chain (bias, grammar, temperature, mirostat)"
                if order_off
                else "runs top to bottom; each sees what the ones above left"
            )
            note.set_class(order_off, "off")

    def _bias_lines(self) -> Text:
        bias = self.params.logit_bias
        if not bias:
            return Text("no biases · ban or boost a token from the inspector", "dim")
        text = Text()
        for i, (token, value) in enumerate(sorted(bias.items())):
            if i:
                text.append("\n")
            text.append(f"{token} ", "dim")
            if self.n_vocab is not None and not 0 <= token < self.n_vocab:
                text.append("not in this model's vocabulary ", "#e57373")
            elif self.token_text is not None:
                try:
                    piece = self.token_text(token)
                except Exception:  # no model loaded (a switch): the id is all there is
                    piece = None
                if piece is not None:
                    text.append(repr(piece)[1:-1][:14] + " ", "bold")
            colour = "#e57373" if value < 0 else "#66bb6a"
            text.append("banned" if value == -math.inf else f"{value:+g}", colour)
        return text

    def set_token_text(
        self,
        token_text: Callable[[int], str] | None,
        *,
        n_vocab: int | None = None,
        check: Callable[[SamplingParams], tuple[str, str] | None] | None = None,
    ) -> None:
        """The loaded model's vocabulary: how to show a token id as text in the bias list, its
        size, and ``check`` (what it can't use: a grammar that won't parse, ...), or None."""
        self.token_text = token_text
        self.n_vocab = n_vocab
        self.check = check
        self.query_one("#bias-list", Static).update(self._bias_lines())

    def show_problem(self, name: str, message: str) -> None:
        """Show ``message`` under field ``name`` (a problem found outside the panel, e.g. at load)."""
        self._show_error(name, message)

    def _model_problem(self, params: SamplingParams, names: tuple[str, ...]) -> tuple[str, str] | None:
        """What the loaded model can't use in ``params`` among fields ``names`` (shown inline)."""
        if self.check is None:
            return None
        try:
            problem = self.check(params)
        except Exception:  # the model went away mid-check (a switch): the engine checks again
            return None
        if problem is None or problem[0] not in names:
            return None
        self._show_error(problem[0], problem[1])
        return problem

    # -- events --------------------------------------------------------------------------
    def check_field(self, field: Input) -> tuple[str, object] | None:
        """Validate ``field``'s text, showing or clearing its inline error; (name, value) if valid."""
        if isinstance(field, StepInput):
            spec = field.spec
            name = spec.name
            text = field.value.strip()
            value: object
            try:
                value = int(text) if spec.kind is int else float(text)
            except ValueError:
                kind = "a whole number" if spec.kind is int else "a number"
                self._show_error(name, f"{spec.label} must be {kind}: {spec.allowed}")
                return None
            try:
                replace_params(self.params, **{name: value})
            except ValidationError:
                self._show_error(name, f"{spec.label} must be {spec.allowed}")
                return None
        elif field.id in ("field-stop", "field-dry_sequence_breakers", "field-logit_bias"):
            name = field.id.removeprefix("field-")
            try:
                value = parse_bias(field.value) if name == "logit_bias" else parse_stop_strings(field.value)
                checked = replace_params(self.params, **{name: value})
            except ValueError as exc:  # ValidationError is a ValueError too
                message = _first_error(exc) if isinstance(exc, ValidationError) else str(exc)
                self._show_error(name, message)
                return None
            if name == "logit_bias" and self.n_vocab is not None:
                problem = bias_problem(checked, self.n_vocab)
                if problem:
                    self._show_error(name, problem)
                    return None
        else:
            return None
        self._show_error(name, None)
        return name, value

    def commit_field(self, field: Input) -> None:
        """Apply ``field``'s value if it is valid (Enter, leaving the field, or a step)."""
        checked = self.check_field(field)
        if checked is None:
            return
        name, value = checked
        if isinstance(field, StepInput) and isinstance(value, int | float):
            field.last_valid = value
        self._apply(name, value)

    def on_input_changed(self, event: Input.Changed) -> None:
        """Typing: validate as you type (the value applies on Enter or when leaving the field)."""
        event.stop()
        self.check_field(event.input)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter: apply the typed value."""
        event.stop()
        self.commit_field(event.input)

    def on_input_blurred(self, event: Input.Blurred) -> None:
        """Leaving a field applies its value."""
        self.commit_field(event.input)

    def on_step_input_stepped(self, event: StepInput.Stepped) -> None:
        """A step applies at once."""
        event.stop()
        self.commit_field(event.input)

    def on_switch_changed(self, event: Switch.Changed) -> None:
        """Greedy on/off."""
        event.stop()
        self._apply("mode", SamplingMode.GREEDY if event.value else SamplingMode.SAMPLE)

    def on_select_changed(self, event: Select.Changed) -> None:
        """A preset was picked."""
        event.stop()
        if event.select.id == "field-mirostat":
            if isinstance(event.value, int) and event.value != int(self.params.mirostat):
                self._apply("mirostat", Mirostat(event.value))
            return
        if isinstance(event.value, str) and event.value in self.presets:
            self.set_params(self.presets[event.value])

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Reset or save as default."""
        event.stop()
        if event.button.id == "reset":
            self.reset()
        elif event.button.id == "save-default":
            self.post_message(self.SaveDefaultRequested(self.params))
        elif event.button.id == "clear-biases":
            self.clear_biases()
        elif event.button.id == "apply-constraint":
            self.apply_constraint()
        elif event.button.id in ("order-up", "order-down"):
            self.move_sampler(-1 if event.button.id == "order-up" else 1)
        elif event.button.id == "order-default":
            self._apply("samplers", DEFAULT_SAMPLER_ORDER)

    def on_order_list_move_requested(self, event: OrderList.MoveRequested) -> None:
        """shift+up/down in the order list."""
        event.stop()
        self.move_sampler(event.delta)

    def move_sampler(self, delta: int) -> None:
        """Move the highlighted sampler of the order up (-1) or down (+1)."""
        order = self.query_one("#order-list", OrderList)
        index = order.highlighted
        samplers = list(self.params.samplers)
        if index is None or not 0 <= index < len(samplers) or not 0 <= index + delta < len(samplers):
            return
        samplers[index], samplers[index + delta] = samplers[index + delta], samplers[index]
        self._apply("samplers", tuple(samplers))
        order.highlighted = index + delta

    def clear_biases(self) -> None:
        """Remove every logit bias and ban."""
        self.query_one("#field-logit_bias", Input).value = ""
        self._apply("logit_bias", {})

    def apply_constraint(self) -> None:
        """Apply the grammar and JSON schema text areas (a bad one gets an inline message)."""
        grammar = self.query_one("#field-grammar", TextArea).text
        schema = self.query_one("#field-json_schema", TextArea).text
        try:
            new = replace_params(self.params, grammar=grammar, json_schema=schema)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = str(error["loc"][0]) if error["loc"] else "json_schema" if schema.strip() else "grammar"
            message = str(error["msg"]).removeprefix("Value error, ")
            self._show_error(where if where in ("grammar", "json_schema") else "grammar", message)
            return
        self._show_error("grammar", None)
        self._show_error("json_schema", None)
        if new.has_constraint and self._model_problem(new, ("grammar", "json_schema")):
            return  # llama.cpp's parser (or the schema converter) refused it: nothing applied
        if new != self.params:
            self.params = new
            self.post_message(self.ParamsChanged(self, new, "grammar"))
            self._show_applicable()

    def reset(self) -> None:
        """Back to the default parameters."""
        self.query_one("#preset", Select).clear()
        self.set_params(self.defaults)

    def toggle_greedy(self) -> None:
        """Flip greedy mode."""
        switch = self.query_one("#mode", Switch)
        switch.value = not switch.value


class OrderList(OptionList):
    """The sampler order, top to bottom; shift+up/down move the highlighted sampler."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("shift+up", "move(-1)", "Move up", show=False, id="sampling.order_up",
                tooltip="Move the highlighted sampler up the chain"),
        Binding("shift+down", "move(1)", "Move down", show=False, id="sampling.order_down",
                tooltip="Move the highlighted sampler down the chain"),
    ]  # fmt: skip

    _shown: tuple[tuple[SamplerName, bool], ...] | None = None

    class MoveRequested(Message):
        """Move the highlighted sampler by ``delta`` places."""

        def __init__(self, delta: int) -> None:
            super().__init__()
            self.delta = delta

    def action_move(self, delta: int) -> None:
        """Ask the panel to move the highlighted sampler."""
        self.post_message(self.MoveRequested(delta))

    def show(self, params: SamplingParams) -> None:
        """List ``params.samplers`` in order, each marked on or off (rebuilt only when that changes)."""
        shown = tuple((name, sampler_is_on(params, name)) for name in params.samplers)
        if shown == self._shown:
            return
        self._shown = shown
        highlighted = self.highlighted
        self.clear_options()
        options = []
        for i, name in enumerate(params.samplers):
            on = sampler_is_on(params, name)
            label = Text(f"{i + 1}. ", "dim")
            label.append(SAMPLER_LABELS[name], "bold" if on else "dim strike")
            label.append("" if on else "  off", "dim")
            options.append(Option(label, id=f"order-{name.value}"))
        self.add_options(options)
        if highlighted is not None and options:
            self.highlighted = min(highlighted, len(options) - 1)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    return str(error["msg"]).removeprefix("Value error, ")
