"""The compare view: one prompt, 2-4 parameter sets decoded together, side by side.

Pick the sets (a sweep of one parameter on the current values, the presets, or the current
values against greedy), run them (r), stop the focused column alone (s), change the focused
column's parameters live (``[`` / ``]`` its temperature, ``t`` the sampling panel for it), cancel
all or close (escape), and keep the focused column as the chat's reply (p). The columns stream in a thread
worker that hands their events over in batches; the point where they parted is marked in each
column as soon as it is known. On a narrow terminal the columns stack and scroll.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, ScrollableContainer
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Select, Static
from textual.worker import get_current_worker

from settings.sampling import TEMPERATURE_MAX, SamplingMode, SamplingParams
from tui.compare_export import CompareOutcome, write_comparison
from tui.core.text import one_line
from tui.engine.batch import ColumnDone, ColumnToken, CompareDone, CompareEvent, CompareStarted
from tui.engine.events import ChatMessage, PromptProgress, StopReason, TokenEvent
from tui.engine.live import LiveParams
from tui.engine.param_sets import SWEEPS, ParamSetError, apply_changes, column_labels, sweep_sets
from tui.engine.parting import Parting, where_they_part
from tui.widgets.compare_column import CompareColumn
from tui.widgets.sampling_panel import SamplingPanel
from tui.widgets.token_view import TokenView

CompareRunner = Callable[
    [Sequence[ChatMessage], Sequence[LiveParams], threading.Event, Sequence[threading.Event]],
    Iterator[CompareEvent],
]
"""What runs a compare (BatchDecoder.stream_compare, or a fake with the same rules)."""
CompareSink = Callable[[list[CompareEvent]], None]
CompareSubmit = Callable[
    [Sequence[ChatMessage], Sequence[LiveParams], threading.Event, Sequence[threading.Event], CompareSink],
    None,
]
"""Hands a compare to the thread that owns the model (the app's engine worker); it sends the events
to the sink in batches, the last one ending with a CompareDone."""
FitCheck = Callable[[Sequence[ChatMessage], Sequence[SamplingParams]], str | None]
"""Why these sets can't run (what fits), or None."""
COLUMN_MIN_WIDTH = 34
"""Narrower than this per column, the columns stack."""
HANDOVER_S = 0.03
"""The worker hands events to the UI at most this often."""


def set_choices(
    base: SamplingParams, presets: Mapping[str, SamplingParams]
) -> list[tuple[str, list[SamplingParams]]]:
    """The sets the chooser offers: each sweep on ``base``, the presets, current vs greedy."""
    choices: list[tuple[str, list[SamplingParams]]] = []
    for sweep in SWEEPS:
        try:
            choices.append((sweep.name, sweep_sets(sweep, base)))
        except ParamSetError:
            continue  # e.g. a sweep value the base can't take: not offered
    names = list(presets)[:4]
    if len(names) >= 2:
        choices.append(("presets " + " / ".join(names), [presets[n] for n in names]))
    greedy = apply_changes(base, {"mode": SamplingMode.GREEDY}, name="greedy")
    choices.append(("current values vs greedy", [base, greedy]))
    return choices


class CompareScreen(Screen[CompareOutcome | None]):
    """2-4 columns of the same prompt under different parameters, decoded in one batch."""

    AUTO_FOCUS = ".compare-tokens"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run", "Run", id="compare.run", tooltip="Start every column (one batch)"),
        Binding("s", "stop_column", "Stop column", id="compare.stop_column",
                tooltip="Stop the focused column alone; the others go on"),
        Binding("p", "promote", "Keep column", id="compare.promote",
                tooltip="Keep the focused column as the chat's reply (the others become its branches)"),
        Binding("left_square_bracket", "nudge_temperature(-0.1)", "T-", id="compare.temperature_down",
                tooltip="Lower the focused column's temperature by 0.1 (live while it runs)"),
        Binding("right_square_bracket", "nudge_temperature(0.1)", "T+", id="compare.temperature_up",
                tooltip="Raise the focused column's temperature by 0.1 (live while it runs)"),
        Binding("t", "toggle_panel", "Panel", id="compare.panel",
                tooltip="The sampling panel for the focused column: a change applies from its next token"),
        Binding("e", "export", "Export", id="compare.export",
                tooltip="Write this comparison (every column's parameters, stop reason and text) as JSON"),
        Binding("escape", "cancel_or_close", "Cancel/close", id="compare.close",
                tooltip="Cancel every running column; when none runs, close the compare"),
    ]  # fmt: skip

    class Events(Message):
        """A batch of compare events from the worker."""

        def __init__(self, run: int, batch: list[CompareEvent]) -> None:
            super().__init__()
            self.run = run
            self.batch = batch

    class ColumnFocused(Message):
        """The focused column changed (the panel can show and edit its parameters)."""

        def __init__(self, column: int, params: SamplingParams) -> None:
            super().__init__()
            self.column = column
            self.params = params

    def __init__(
        self,
        messages: Sequence[ChatMessage],
        runner: CompareRunner | None,
        *,
        submit: CompareSubmit | None = None,
        base: SamplingParams,
        presets: Mapping[str, SamplingParams],
        sets: Sequence[SamplingParams] | None = None,
        check: FitCheck | None = None,
        export_dir: Path | None = None,
        raw: bool = False,
    ) -> None:
        super().__init__(id="compare")
        self.messages = list(messages)
        self.runner = runner
        self.submit = submit
        """If given, runs go to it (the app's engine worker) instead of this screen's own thread."""
        self.base = base
        self.check = check
        self.raw = raw
        """Completion mode: the prompt's text is continued as it is (no chat template)."""
        self.export_dir = export_dir
        """Where ``e`` writes the comparison (None: export not offered)."""
        self.presets = presets
        self.choices = set_choices(base, presets)
        if sets and all(list(sets) != chosen for _name, chosen in self.choices):
            self.choices.insert(0, (f"{len(sets)} sets given", list(sets)))
        self.sets: list[SamplingParams] = list(sets) if sets else list(self.choices[0][1])
        self.lives: list[LiveParams] = []
        self.stops: list[threading.Event] = []
        self.cancel = threading.Event()
        self.running = False
        self.run_number = 0
        self.focused_column = 0
        self.done: CompareDone | None = None
        self.parting: Parting | None = None
        self._dones: list[StopReason | None] = []

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        """Prompt, set chooser, the columns, status line, footer."""
        prompt = self.messages[-1].content if self.messages else ""
        mode = " (completion mode: the text continued, no template)" if self.raw else ""
        yield Static(Text(f"Compare{mode}: {one_line(prompt, 200)}"), id="compare-prompt")
        with Horizontal(id="compare-bar"):
            options = [(name, i) for i, (name, _sets) in enumerate(self.choices)]
            yield Select(options, value=self._chosen_index(), allow_blank=False, id="compare-sets")
            yield Static(
                "r run · s stop column · [ ] temperature · t panel · p keep · e export · esc cancel/close",
                id="compare-keys",
            )
        panel = SamplingPanel(self.sets[0], dict(self.presets), self.base, id="compare-panel")
        panel.border_title = "Sampling · column 1"
        yield panel
        with ScrollableContainer(id="compare-columns"):
            yield from self._columns()
        yield Static("", id="compare-info")
        yield Footer()

    def _chosen_index(self) -> int:
        for i, (_name, sets) in enumerate(self.choices):
            if sets == self.sets:
                return i
        return 0

    def _columns(self) -> Iterator[CompareColumn]:
        for column, (params, label) in enumerate(zip(self.sets, column_labels(self.sets), strict=True)):
            yield CompareColumn(column, params, label)

    @property
    def columns(self) -> list[CompareColumn]:
        """The column widgets, in order."""
        return list(self.query(CompareColumn))

    def on_resize(self, event: events.Resize) -> None:
        """Stack the columns when the terminal is too narrow for them side by side."""
        self._place()

    def _place(self) -> None:
        container = self.query_one("#compare-columns", ScrollableContainer)
        stacked = self.size.width < COLUMN_MIN_WIDTH * max(1, len(self.sets))
        container.set_class(stacked, "-stacked")

    @on(Select.Changed, "#compare-sets")
    async def _sets_chosen(self, event: Select.Changed) -> None:
        if self.running or not isinstance(event.value, int):
            return
        chosen = self.choices[event.value][1]
        if chosen == self.sets:
            return
        await self.show_sets(chosen)

    async def show_sets(self, sets: Sequence[SamplingParams]) -> None:
        """Replace the columns with ``sets`` (not while running)."""
        if self.running:
            return
        self.sets = list(sets)
        container = self.query_one("#compare-columns", ScrollableContainer)
        await container.remove_children()
        await container.mount_all(list(self._columns()))
        self.done = None
        self.parting = None
        self._place()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """Track the focused column (its token view has the focus)."""
        for node in event.widget.ancestors_with_self:
            if isinstance(node, CompareColumn):
                if node.column != self.focused_column:
                    self.focused_column = node.column
                    self.post_message(self.ColumnFocused(node.column, node.params))
                    self._show_in_panel()
                return

    # -- the sampling panel: drives the focused column --------------------------------------
    @property
    def panel(self) -> SamplingPanel:
        """The sampling panel of the compare view (shown with ``t``)."""
        return self.query_one("#compare-panel", SamplingPanel)

    def action_toggle_panel(self) -> None:
        """Show or hide the sampling panel for the focused column."""
        panel = self.panel
        shown = not panel.has_class("-shown")
        panel.set_class(shown, "-shown")
        if shown:
            self._show_in_panel()
        else:
            self.focus_column(self.focused_column)

    def _show_in_panel(self) -> None:
        if not 0 <= self.focused_column < len(self.sets):
            return
        panel = self.panel
        panel.border_title = f"Sampling · column {self.focused_column + 1}"
        panel.set_params(self.sets[self.focused_column], announce=False)

    @on(SamplingPanel.ParamsChanged, "#compare-panel")
    def _panel_changed(self, event: SamplingPanel.ParamsChanged) -> None:
        """A panel change goes to the focused column (from its next token while it runs), not the chat."""
        event.stop()
        self.set_column_params(self.focused_column, event.params)

    # -- running -----------------------------------------------------------------------------
    async def action_run(self) -> None:
        """Start every column in one batch (after checking they fit)."""
        if self.running:
            return
        if self.check is not None:
            problem = self.check(self.messages, self.sets)
            if problem:
                self._info(Text(problem, style="bold red"))
                return
        if self.done is not None or any(c.record.events for c in self.columns):
            await self.show_sets(self.sets)  # a fresh run: fresh columns
        self.cancel = threading.Event()
        self.lives = [LiveParams(p) for p in self.sets]
        self.stops = [threading.Event() for _ in self.sets]
        self._dones = [None] * len(self.sets)
        self.running = True
        self.run_number += 1
        self._info(Text("evaluating the prompt once for every column…", style="dim"))
        if self.submit is not None:
            run = self.run_number
            self.submit(self.messages, self.lives, self.cancel, self.stops, lambda b: self._post(run, b))
        else:
            self._work(self.run_number, self.lives, self.stops, self.cancel)
        self.columns[0].view.focus()

    def _post(self, run: int, batch: list[CompareEvent]) -> None:
        self.post_message(self.Events(run, batch))

    @work(thread=True, exclusive=True, group="compare")
    def _work(
        self, run: int, lives: list[LiveParams], stops: list[threading.Event], cancel: threading.Event
    ) -> None:
        worker = get_current_worker()
        assert self.runner is not None  # _work runs only without submit
        batch: list[CompareEvent] = []
        last = time.monotonic()
        for event in self.runner(self.messages, lives, cancel, stops):
            if worker.is_cancelled:
                cancel.set()
            batch.append(event)
            now = time.monotonic()
            if now - last >= HANDOVER_S or isinstance(event, CompareDone | CompareStarted | ColumnDone):
                self.post_message(self.Events(run, batch))
                batch = []
                last = now
        if batch:
            self.post_message(self.Events(run, batch))

    def on_compare_screen_events(self, message: CompareScreen.Events) -> None:
        """Show a batch of events in the columns."""
        if message.run != self.run_number:
            return
        columns = self.columns
        tokens: dict[int, list[TokenEvent]] = {}
        for event in message.batch:
            if isinstance(event, ColumnToken):
                tokens.setdefault(event.column, []).append(event.token)
                continue
            self._flush(columns, tokens)
            if isinstance(event, ColumnDone):
                columns[event.column].finish(event.done)
                self._dones[event.column] = event.done.stop
            elif isinstance(event, PromptProgress):
                self._info(Text(f"prompt {event.evaluated}/{event.total} tokens", style="dim"))
            elif isinstance(event, CompareStarted):
                self._info(
                    Text(
                        f"prompt {event.prompt_tokens} tokens evaluated once for {event.columns} columns "
                        f"in {event.prompt_ms:.0f} ms · KV cache {event.kv_cells} tokens",
                        style="dim",
                    )
                )
            elif isinstance(event, CompareDone):
                self._ended(event)
        self._flush(columns, tokens)
        if self.parting is None and self.done is None:
            self._show_parting(where_they_part([c.record.events for c in columns], self._dones))

    def _flush(self, columns: list[CompareColumn], tokens: dict[int, list[TokenEvent]]) -> None:
        for column, events_ in tokens.items():
            columns[column].add_tokens(tuple(events_))
        tokens.clear()

    def _show_parting(self, parting: Parting | None) -> None:
        if parting is None:
            return
        self.parting = parting
        for column in self.columns:
            column.mark_parting(parting)

    def _ended(self, done: CompareDone) -> None:
        self.running = False
        if done.refused:  # the columns don't fit: nothing started, the columns stay as they were
            self._info(Text(f"Not started: {done.refused}", style="bold red"))
            return
        self.done = done
        self.parting = None
        for column in self.columns:
            column.mark_parting(None)
        self._show_parting(done.parting)
        total = sum(d.generated for d in done.dones)
        speed = f" · {total * 1000.0 / done.wall_ms:.1f} tok/s over all columns" if done.wall_ms > 0 else ""
        part = one_line(done.parting.describe(), 160) if done.parting else "the columns did not part"
        self._info(
            Text(
                f"{len(done.dones)} columns, {total} tokens in {done.steps} batched steps{speed} · {part}",
            )
        )

    def _info(self, text: Text) -> None:
        self.query_one("#compare-info", Static).update(text)

    # -- per column ----------------------------------------------------------------------------
    def set_column_params(self, column: int, params: SamplingParams) -> None:
        """Change a column's parameters: live while it runs (read before its next token), else for the
        next run."""
        if not 0 <= column < len(self.sets):
            return
        self.sets[column] = params
        version = 0
        if self.running and column < len(self.lives):
            version = self.lives[column].set(params)
        self.columns[column].set_params(params, version)

    def action_nudge_temperature(self, delta: float) -> None:
        """Change the focused column's temperature by ``delta`` (live while it runs)."""
        column = self.focused_column
        if not 0 <= column < len(self.sets):
            return
        params = self.sets[column]
        value = round(min(max(params.temperature + delta, 0.0), TEMPERATURE_MAX), 2)
        try:
            changed = apply_changes(params, {"temperature": value}, name=f"column {column + 1}")
        except ParamSetError as exc:
            self._info(Text(exc.message, style="bold red"))
            return
        self.set_column_params(column, changed)

    def action_stop_column(self) -> None:
        """Stop the focused column alone."""
        if self.running and self.focused_column < len(self.stops):
            self.stops[self.focused_column].set()

    def action_cancel_or_close(self) -> None:
        """Cancel every column; when none runs, close the view."""
        if self.running:
            self.cancel.set()
            return
        self.dismiss(self._outcome(None))

    def action_promote(self) -> None:
        """Keep the focused column as the reply (only once every column has ended)."""
        if self.running or self.done is None:
            self._info(Text("Keep a column after the run has ended (r runs, esc cancels).", style="bold"))
            return
        self.dismiss(self._outcome(self.focused_column))

    def _outcome(self, promoted: int | None) -> CompareOutcome | None:
        if self.done is None:
            return None
        columns = self.columns
        return CompareOutcome(
            promoted=promoted,
            sets=tuple(self.sets),
            events=tuple(tuple(c.record.events) for c in columns),
            dones=tuple(c.record.done for c in columns),
            parting=self.done.parting,
            messages=tuple(self.messages),
        )

    def action_export(self) -> None:
        """Write the finished comparison as JSON to the export folder."""
        outcome = self._outcome(None)
        if outcome is None or self.export_dir is None:
            self._info(Text("Export a comparison once it has run (r).", style="bold"))
            return
        try:
            path = write_comparison(outcome, self.export_dir)
        except OSError as exc:
            self._info(Text(f"Could not export: {exc.strerror or exc}", style="bold red"))
            return
        self._info(Text(f"exported to {path}"))

    def focus_column(self, column: int) -> None:
        """Focus a column's token view."""
        views = list(self.query(TokenView))
        if 0 <= column < len(views):
            views[column].focus()
