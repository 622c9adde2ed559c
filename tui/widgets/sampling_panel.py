"""The live sampling panel: every SamplingParams field, steppable and typable, plus presets.

A valid edit makes a new frozen SamplingParams (:func:`replace_params`) and posts
:class:`SamplingPanel.ParamsChanged`; the app pushes it into the LiveParams the token loop reads
before its next token. An invalid value shows an inline message under the field and is not
applied. Greedy mode disables the fields greedy decoding ignores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from pydantic import ValidationError
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static, Switch

from settings.sampling import (
    MAX_NEW_TOKENS_MAX,
    REPEAT_PENALTY_MAX,
    SEED_MAX,
    TEMPERATURE_MAX,
    TOP_K_MAX,
    SamplingMode,
    SamplingParams,
    replace_params,
)


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


NUMERIC_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("temperature", "temperature", float, 0.05, 0.5, 0.0, TEMPERATURE_MAX,
              f"a number from 0 to {TEMPERATURE_MAX:g}", True,
              "Divides the logits: <1 sharpens, >1 flattens the distribution; 0 = greedy."),
    FieldSpec("top_k", "top-k", int, 1, 10, 0, TOP_K_MAX, f"a whole number from 0 (off) to {TOP_K_MAX}",
              True, "Keep only the k most likely tokens (0 = off)."),
    FieldSpec("top_p", "top-p", float, 0.01, 0.1, 0.01, 1.0, "a number above 0, at most 1 (1 = off)",
              True, "Keep the smallest set of tokens whose probabilities add up to p."),
    FieldSpec("min_p", "min-p", float, 0.01, 0.1, 0.0, 1.0, "a number from 0 (off) to 1", True,
              "Drop tokens less likely than min-p times the most likely one."),
    FieldSpec("repeat_penalty", "repeat penalty", float, 0.05, 0.5, 0.05, REPEAT_PENALTY_MAX,
              f"a number above 0, at most {REPEAT_PENALTY_MAX:g} (1 = off)", False,
              "Divides the logits of recently seen tokens: >1 discourages repeats."),
    FieldSpec("max_new_tokens", "max new tokens", int, 16, 256, 1, MAX_NEW_TOKENS_MAX,
              f"a whole number from 1 to {MAX_NEW_TOKENS_MAX}", False,
              "A cap on the reply's length in tokens (not a target)."),
    FieldSpec("seed", "seed", int, 1, 100, -1, SEED_MAX, f"a whole number from -1 (random) to {SEED_MAX}",
              True, "Random seed for sampling; -1 = a fresh one per reply."),
)  # fmt: skip


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

    def compose(self) -> ComposeResult:
        """Preset picker, mode switch, one row per parameter, stop strings, buttons."""
        yield Select(
            [(name, name) for name in self.presets],
            prompt="preset…",
            id="preset",
            compact=True,
            tooltip="Load a named parameter set from your settings",
        )
        with Horizontal(classes="row"):
            yield Label("greedy", classes="field-label")
            yield Switch(
                value=self.params.mode is SamplingMode.GREEDY,
                id="mode",
                tooltip="Greedy: always take the most likely token (deterministic, tends to repeat)",
            )
        yield Static(
            "greedy picks the top token: temperature, top-k, top-p, min-p and seed don't apply",
            id="greedy-note",
        )
        for spec in NUMERIC_FIELDS:
            with Vertical(classes="field", id=f"row-{spec.name}"):
                with Horizontal(classes="row"):
                    yield Label(spec.label, classes="field-label")
                    yield StepInput(spec, getattr(self.params, spec.name))
                yield Static("", classes="field-error", id=f"error-{spec.name}")
        with Vertical(classes="field", id="row-stop"):
            with Horizontal(classes="row"):
                yield Label("stop strings", classes="field-label")
                yield Input(
                    format_stop_strings(self.params.stop),
                    placeholder="e.g. ###, \\n\\n",
                    id="field-stop",
                    compact=True,
                    tooltip="Comma-separated; the reply ends when one appears. \\n = newline, \\, = comma",
                )
            yield Static("", classes="field-error", id="error-stop")
        with Horizontal(id="panel-buttons"):
            yield Button("Reset", id="reset", compact=True, tooltip="Back to the default parameters")
            yield Button(
                "Save default", id="save-default", compact=True, tooltip="Write these to the config file"
            )

    def on_mount(self) -> None:
        """Show the greedy state of the initial parameters."""
        self._show_greedy(self.params.mode is SamplingMode.GREEDY)

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
        self._show_error("stop", None)
        self.query_one("#mode", Switch).value = params.mode is SamplingMode.GREEDY
        self._show_greedy(params.mode is SamplingMode.GREEDY)
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
            self.post_message(self.ParamsChanged(self, new, name))

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

    def _show_greedy(self, greedy: bool) -> None:
        self.set_class(greedy, "greedy")
        for spec in NUMERIC_FIELDS:
            if spec.greedy_ignores:
                self.query_one(f"#field-{spec.name}", StepInput).disabled = greedy
                self.query_one(f"#row-{spec.name}").set_class(greedy, "disabled")

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
        elif field.id == "field-stop":
            name = "stop"
            value = parse_stop_strings(field.value)
            try:
                replace_params(self.params, stop=value)
            except ValidationError as exc:
                self._show_error(name, _first_error(exc))
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
        greedy = event.value
        self._show_greedy(greedy)
        self._apply("mode", SamplingMode.GREEDY if greedy else SamplingMode.SAMPLE)

    def on_select_changed(self, event: Select.Changed) -> None:
        """A preset was picked."""
        event.stop()
        if isinstance(event.value, str) and event.value in self.presets:
            self.set_params(self.presets[event.value])

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Reset or save as default."""
        event.stop()
        if event.button.id == "reset":
            self.reset()
        elif event.button.id == "save-default":
            self.post_message(self.SaveDefaultRequested(self.params))

    def reset(self) -> None:
        """Back to the default parameters."""
        self.query_one("#preset", Select).clear()
        self.set_params(self.defaults)

    def toggle_greedy(self) -> None:
        """Flip greedy mode."""
        switch = self.query_one("#mode", Switch)
        switch.value = not switch.value


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    return str(error["msg"])
