"""The tokendial Textual app: chat with a local model, steer sampling live, see why each reply stopped.

Flow: the prompt box sends :class:`PromptInput.Submitted`; the app queues a :class:`ReplyJob` on the
:class:`EngineWorker` (one thread that owns the model); the worker posts :class:`TokensStreamed`
batches and one :class:`ReplyFinished`; the app hands them to the transcript, the token view and
the status bar. The sampling panel posts :class:`SamplingPanel.ParamsChanged`; the app pushes the
new frozen SamplingParams into the LiveParams the token loop reads before every token.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import App, ScreenStackError, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import ContentSwitcher, Input

from settings.config import ConfigWriteError, Settings, save_default_sampling
from settings.sampling import DEFAULT_PRESETS, SamplingParams
from tui.chat_actions import ChatActions
from tui.engine.events import ChatMessage, ModelLoadError, ReplyDone, TokenEvent
from tui.engine.live import LiveParams
from tui.engine.protocol import ChatEngine, LoadConfig
from tui.inspector_actions import InspectorActions
from tui.model_actions import ModelActions
from tui.pacing import RedrawPacer
from tui.reply import ReplyRecord
from tui.screens.help import HelpScreen
from tui.screens.main import MainScreen
from tui.widgets.chat_view import AssistantMessage, ChatView, Notice, UserMessage
from tui.widgets.prompt_input import PromptInput
from tui.widgets.safe_text import clean, has_control, one_cell, one_line
from tui.widgets.sampling_panel import SamplingPanel
from tui.widgets.status_bar import ModelState, StatusBar
from tui.widgets.token_view import TokenView
from tui.worker import (
    EngineFactory,
    EngineWorker,
    ModelLoaded,
    ModelLoadFailed,
    ReplyFinished,
    ReplyJob,
    TokensStreamed,
    error_done,
)

__all__ = ["ReplyFinished", "TokendialApp", "run_app"]

STATUS_REFRESH_S = 0.5
"""The status bar's live token count is redrawn at most this often while a reply streams: a
redraw of the status bar (bottom row) in the same frame as the transcript makes Textual render the
whole rectangle between them, the sampling panel included."""

LOAD_FAILED_HELP = (
    "What to do: press F2 to load another model (a .gguf file from the models folder, or a path), "
    "run `tokendial fetch` to install the default model, or point `model_path` at a GGUF file "
    "(flag --model-path, env TOKENDIAL_MODEL_PATH, or the config file)."
)


def load_llama_engine(config: LoadConfig) -> ChatEngine:
    """The default engine factory: the llama.cpp engine (imported lazily, so the UI starts at once)."""
    try:
        from tui.engine.llama_engine import load_engine  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise ModelLoadError(
            f"the llama.cpp engine is not available ({exc})",
            "Install the project with its dependencies (see the README), then start tokendial again.",
        ) from None
    engine: ChatEngine = load_engine(config)
    return engine


def load_config_for(settings: Settings) -> LoadConfig:
    """The LoadConfig the settings describe (the default model when no model_path is set)."""
    return LoadConfig(
        model_path=settings.model_path or settings.default_model_path,
        n_ctx=settings.n_ctx,
        n_gpu_layers=settings.n_gpu_layers,
        n_threads=settings.n_threads,
        chat_template=settings.chat_template,
        top_n=settings.top_n,
    )


class TokendialApp(ChatActions, InspectorActions, ModelActions, App[int]):
    """Chat with a local GGUF model; a live sampling panel; a token view that shows why replies stop."""

    CSS_PATH = "app.tcss"
    TITLE = "tokendial"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel_reply", "Cancel", id="app.cancel",
                tooltip="Stop the reply being generated"),
        Binding("ctrl+t", "toggle_tokens", "Tokens", id="app.toggle_tokens",
                tooltip="Switch between the rendered chat and the token-by-token view"),
        Binding("ctrl+o", "toggle_probability", "Colour by p", id="app.toggle_probability",
                tooltip="Colour tokens by the probability the model gave them"),
        Binding("ctrl+r", "regenerate", "Regenerate", id="app.regenerate",
                tooltip="Generate the last reply again with the current parameters"),
        Binding("ctrl+l", "edit_last", "Edit last", id="app.edit_last",
                tooltip="Put the last prompt back in the prompt box to edit and resend it"),
        Binding("ctrl+n", "new_chat", "New chat", id="app.new_chat", tooltip="Start a new, empty chat"),
        Binding("ctrl+g", "toggle_greedy", "Greedy", id="app.toggle_greedy", tooltip="Greedy mode on/off"),
        Binding("f4", "focus_panel", "Panel", id="app.focus_panel", tooltip="Go to the sampling panel"),
        Binding("ctrl+s", "save_default", "Save default", show=False, id="app.save_default",
                tooltip="Save the current sampling parameters as the default"),
        Binding("f1", "help", "Help", id="app.help", tooltip="What the parameters and badges mean"),
        Binding("f3", "chats", "Chats", id="app.chats", tooltip="Saved chats: open, rename, delete, search"),
        Binding("f2", "pick_model", "Model", show=False, id="app.pick_model",
                tooltip="Load another model: a GGUF file from the models folder, or a path"),
        Binding("i", "inspect", "Inspect", show=False, id="app.inspect",
                tooltip="Token inspector: open it, go into it, close it"),
        Binding("u", "least_confident", "Least sure", show=False, id="app.least_confident",
                tooltip="Select the token the model was least sure of"),
        Binding("left_square_bracket", "sibling(-1)", "Prev branch", show=False, id="app.prev_branch",
                tooltip="Show the previous branch of the last reply"),
        Binding("right_square_bracket", "sibling(1)", "Next branch", show=False, id="app.next_branch",
                tooltip="Show the next branch of the last reply"),
    ]  # fmt: skip

    class NewChatStarted(Message):
        """The transcript was cleared for a new chat."""

    def __init__(
        self,
        settings: Settings,
        engine_factory: EngineFactory = load_llama_engine,
        *,
        config_path: Path | None = None,
        batch_s: float = 0.03,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.config_path = config_path
        """The config file "save as default" writes (None: the default location)."""
        self.live = LiveParams(settings.sampling)
        """The parameters the token loop reads before every token."""
        self.params_by_version: dict[int, SamplingParams] = {0: settings.sampling}
        self.presets: dict[str, SamplingParams] = {**DEFAULT_PRESETS, **settings.presets}
        self.history: list[ChatMessage] = []
        """The conversation (without the system prompt)."""
        self.records: dict[int, ReplyRecord] = {}
        """Every reply in the transcript, by id: its TokenEvents, parameter versions and end."""
        self.model_state = ModelState.LOADING
        self.reply_observers: list[Callable[[ReplyFinished], None]] = []
        """Called with every ReplyFinished before the UI shows the reply as finished (e.g. autosave)."""
        self._active: ReplyJob | None = None
        self._next_reply_id = 1
        self._token_record_id: int | None = None
        self._unshown: dict[int, str] = {}
        """Streamed text not drawn yet, by reply id."""
        self._last_ui_refresh = 0.0
        self._last_status_refresh = 0.0
        self.pacer = RedrawPacer()
        """How often streamed tokens are drawn (adapts to what a redraw costs)."""
        self._refresh_timer: Timer | None = None
        self._load_config = load_config_for(settings)
        self._batch_s = batch_s
        self.engine_worker = EngineWorker(self, engine_factory, self._load_config, self.live, batch_s=batch_s)
        self.init_chats()
        self.init_inspector()

    # -- start-up ------------------------------------------------------------------------
    def get_default_screen(self) -> Screen[None]:
        """The main screen, built from the settings."""
        return MainScreen(self.settings.sampling, self.presets, self.settings.sampling)

    def on_ready(self) -> None:
        """Apply the theme, show the loading state, start loading the model in the background."""
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        else:
            self.notify(
                f"Unknown theme {self.settings.theme!r} (setting theme): using {self.theme!r}. "
                f"Themes: {', '.join(sorted(self.available_themes))}.",
                title="Settings",
                severity="warning",
                timeout=10,
            )
        path = self._load_config.model_path
        self.status.show_loading(path.name)
        self.chat_view.mount(
            Notice(f"Loading model {one_line(str(path), 120)} …", classes="loading", id="load-notice")
        )
        self.engine_worker.start()
        self.report_store_problem()

    def on_unmount(self) -> None:
        """Stop the engine thread."""
        self.engine_worker.shutdown()
        self.chat_session.store.close()

    # -- shortcuts to widgets ------------------------------------------------------------
    @property
    def main_screen(self) -> Screen[None]:
        """The main screen, also while a dialog, the help or the command palette is on top of it.

        Widgets are looked up here, not on ``self.screen``: tokens keep streaming while a dialog
        is open, and looking for the chat view on the dialog failed (it crashed the app).
        """
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return self.screen  # type: ignore[return-value]

    @property
    def _quitting(self) -> bool:
        """True once the app is shutting down: its screens (and widgets) may already be gone."""
        return self._exit or self._closing or self._closed or not self.screen_stack

    @property
    def chat_view(self) -> ChatView:
        """The transcript."""
        return self.main_screen.query_one(ChatView)

    @property
    def token_view(self) -> TokenView:
        """The token-stream view."""
        return self.main_screen.query_one(TokenView)

    @property
    def status(self) -> StatusBar:
        """The status bar."""
        return self.main_screen.query_one(StatusBar)

    @property
    def panel(self) -> SamplingPanel:
        """The sampling panel."""
        return self.main_screen.query_one(SamplingPanel)

    @property
    def prompt(self) -> PromptInput:
        """The prompt box."""
        return self.main_screen.query_one(PromptInput)

    @property
    def busy(self) -> bool:
        """True while a reply is queued or being generated."""
        return self._active is not None

    # -- model loading -------------------------------------------------------------------
    def on_model_loaded(self, message: ModelLoaded) -> None:
        """Show the model in the status bar."""
        self.model_state = ModelState.READY
        self.status.set_model(message.info)
        if self._active is not None:
            self.status.state = ModelState.GENERATING
        for notice in self.chat_view.query("#load-notice"):
            notice.remove()
        for warning in message.info.warnings:
            self.notify(one_line(warning), title="Model", severity="warning", timeout=10)

    async def on_model_load_failed(self, message: ModelLoadFailed) -> None:
        """Show why the model did not load and what to do, in the transcript."""
        self.model_state = ModelState.FAILED
        self.status.set_failed()
        for notice in self.chat_view.query("#load-notice"):
            notice.remove()
        text = Text()
        text.append("The model could not be loaded.\n", style="bold")
        text.append(one_line(message.message, 500) + "\n")
        if message.hint:
            text.append(one_line(message.hint, 500) + "\n")
        text.append(LOAD_FAILED_HELP, style="italic")
        await self.chat_view.mount(Notice(text, classes="error", id="load-error"))
        if self._active is not None:
            job = self._active
            done = error_done("the model is not loaded")
            self.post_message(ReplyFinished(job.reply_id, done, job.messages, self.live.params, ()))

    # -- sending -------------------------------------------------------------------------
    async def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        """Send the prompt."""
        await self.send_prompt(message.text)

    async def send_prompt(self, text: str) -> bool:
        """Add ``text`` as a user message and start its reply; False (with a note) if not possible now."""
        if self.model_state is ModelState.FAILED:
            self.notify(
                "The model is not loaded: see the message in the chat, or press F2 to load another.",
                severity="error",
            )
            return False
        if self.busy:
            self.notify("A reply is being generated: wait, or press Esc to cancel it.", severity="warning")
            return False
        self.prompt.clear()
        self.history.append(ChatMessage("user", text))
        self.chat_session.user_message(text, self.live.params)
        await self.chat_view.mount(UserMessage(text))
        await self._start_reply()
        return True

    async def _start_reply(
        self, continue_from: tuple[int, ...] = (), prefix: tuple[TokenEvent, ...] = ()
    ) -> None:
        reply_id = self._next_reply_id
        self._next_reply_id += 1
        record = ReplyRecord(reply_id, list(prefix), params_by_version=self.params_by_version)
        self.records[reply_id] = record
        chat = self.chat_view
        chat.anchor()
        message = AssistantMessage(record)
        await chat.mount(message)
        chat.fold()  # a long chat would slow every redraw of the stream (see SHOWN_MESSAGES)
        if prefix:  # a branch: its fixed tokens are already there
            await message.append(record.streamed_text)
        job = ReplyJob(reply_id, self._conversation(), continue_from=continue_from)
        self._active = job
        self.pacer.start()
        self._token_record_id = reply_id
        self.token_view.show_reply(record)
        if self.model_state is ModelState.READY:
            self.status.state = ModelState.GENERATING
        version, params = self.live.snapshot()
        self.chat_session.reply_started(reply_id, params, version)  # saved as 'interrupted' until it ends
        self.engine_worker.submit(job)

    def _conversation(self) -> tuple[ChatMessage, ...]:
        system = self.settings.system_prompt
        prefix = (ChatMessage("system", system),) if system else ()
        return (*prefix, *self.history)

    # -- streaming -----------------------------------------------------------------------
    async def on_tokens_streamed(self, message: TokensStreamed) -> None:
        """A batch of tokens: extend the record, the Markdown stream, the token view and the status."""
        record = self.records.get(message.reply_id)
        if record is None:
            return
        if message.trimmed is not None:
            self.notify(
                f"The chat is longer than the context ({message.trimmed.n_ctx} tokens): "
                f"the {message.trimmed.dropped_messages} oldest messages were left out.",
                severity="warning",
            )
        if message.tokens:
            record.events.extend(message.tokens)
            self.chat_session.reply_progress(
                message.reply_id, lambda: record.streamed_text, len(record.events)
            )
            text = "".join(event.text for event in message.tokens)
            self._unshown[message.reply_id] = self._unshown.get(message.reply_id, "") + text
        elif message.progress is not None and not self._quitting:
            widget = self.chat_view.assistant_message(message.reply_id)
            if widget is not None:
                widget.show_progress(message.progress.evaluated, message.progress.total)
        await self._show_streamed()

    async def _show_streamed(self) -> None:
        """Show streamed tokens now, or later if the last redraw was under ``pacer.interval`` ago.

        The records are always up to date; only the drawing is throttled, so a fast model is not
        slowed down by a relayout per token batch.
        """
        elapsed = time.monotonic() - self._last_ui_refresh
        if elapsed >= self.pacer.interval:
            await self._flush_streamed()
        elif self._refresh_timer is None:
            self._refresh_timer = self.set_timer(self.pacer.interval - elapsed, self._flush_streamed)

    async def _flush_streamed(self, *, final: bool = False) -> None:
        """Draw what was streamed since the last redraw; ``final``: the reply ended (not paced)."""
        if self._refresh_timer is not None:
            self._refresh_timer.stop()
            self._refresh_timer = None
        if self._quitting:  # the screens are going away; the records are complete anyway
            return
        with contextlib.suppress(NoMatches, ScreenStackError):  # quitting: widgets gone mid-draw
            await self._draw_streamed()
        if not final:
            self.pacer.drawn()
            # Messages no more often than redraws need them: each one wakes the UI thread.
            self.engine_worker.batch_s = self._batch_s * self.pacer.interval / self.pacer.min_s

    async def _draw_streamed(self) -> None:
        self._last_ui_refresh = time.monotonic()
        unshown, self._unshown = self._unshown, {}
        for reply_id, text in unshown.items():
            widget = self.chat_view.assistant_message(reply_id)
            if widget is not None:
                await widget.append(text)
            if self._token_record_id == reply_id:
                self.token_view.append_tokens(())
        record = self.records.get(self._active.reply_id) if self._active is not None else None
        if record is not None and self._status_due(len(record.events)):
            # The gauge keeps the last exact count (the prompt size is known when the reply ends).
            self._last_status_refresh = self._last_ui_refresh
            self.status.live_tokens = len(record.events)

    def _status_due(self, count: int) -> bool:
        """Whether the status bar's live count should be redrawn now: the first token at once, then
        at most every STATUS_REFRESH_S."""
        shown = self.status.live_tokens
        if count == shown:
            return False
        return shown == 0 or self._last_ui_refresh - self._last_status_refresh >= STATUS_REFRESH_S

    async def on_reply_finished(self, message: ReplyFinished) -> None:
        """The reply ended: observers first (autosave), then the badge, the status, the history."""
        for observer in self.reply_observers:
            observer(message)
        await self._flush_streamed(final=True)
        record = self.records.get(message.reply_id)
        if record is not None:
            record.done = message.done
            record.prompt_tokens = message.done.prompt_tokens
            if len(record.events) < len(message.tokens):
                record.events[:] = message.tokens
            self.history.append(ChatMessage("assistant", message.done.text))
        if self._active is not None and self._active.reply_id == message.reply_id:
            self._active = None
        if record is None or self._quitting:  # the chat was cleared meanwhile, or the app is quitting
            return
        with contextlib.suppress(NoMatches, ScreenStackError):  # quitting: widgets gone mid-draw
            await self._show_finished(message.reply_id, message.done)

    async def _show_finished(self, reply_id: int, done: ReplyDone) -> None:
        widget = self.chat_view.assistant_message(reply_id)
        if widget is not None:
            await widget.finish(done)
        if self._token_record_id == reply_id:
            self.token_view.finish(done)
        if self.model_state is ModelState.READY:
            self.status.state = ModelState.READY
        self.status.set_done(done)

    # -- parameters ----------------------------------------------------------------------
    def on_sampling_panel_params_changed(self, message: SamplingPanel.ParamsChanged) -> None:
        """Push the new parameters into the LiveParams (the next token uses them)."""
        version = self.live.set(message.params)
        self.params_by_version[version] = message.params
        self.chat_session.params_changed(message.params)

    def on_sampling_panel_save_default_requested(self, message: SamplingPanel.SaveDefaultRequested) -> None:
        """Write the parameters to the config file."""
        self.save_default(message.params)

    def save_default(self, params: SamplingParams) -> None:
        """Save ``params`` as the default sampling parameters in the TOML config."""
        try:
            path = save_default_sampling(params, self.config_path)
        except ConfigWriteError as exc:
            self.notify(str(exc), title="Not saved", severity="error", timeout=10)
            return
        self.panel.defaults = params
        self.notify(f"Saved as the default in {path}", title="Sampling")

    # -- actions -------------------------------------------------------------------------
    def action_cancel_reply(self) -> None:
        """Cancel the reply being generated; its partial text stays, marked cancelled."""
        if self._active is not None:
            self._active.cancel.set()

    async def action_regenerate(self) -> None:
        """Generate the last reply again with the current parameters."""
        if self.busy:
            self.notify("A reply is being generated: press Esc to cancel it first.", severity="warning")
            return
        if self.model_state is ModelState.FAILED:
            self.notify("The model is not loaded.", severity="error")
            return
        if not self.history or self.history[-1].role != "assistant":
            self.notify("There is no reply to regenerate yet.", severity="warning")
            return
        self.history.pop()
        self.chat_session.truncate(len(self.history))
        await self._remove_last(AssistantMessage)
        await self._start_reply()

    async def action_edit_last(self) -> None:
        """Take back the last prompt (and its reply) and put it in the prompt box."""
        if self.busy:
            self.notify("A reply is being generated: press Esc to cancel it first.", severity="warning")
            return
        if not self.history:
            self.notify("There is no prompt to edit yet.", severity="warning")
            return
        if self.history[-1].role == "assistant":
            self.history.pop()
            await self._remove_last(AssistantMessage)
        last = self.history.pop()
        self.chat_session.truncate(len(self.history))
        await self._remove_last(UserMessage)
        prompt = self.prompt
        prompt.text = last.content
        prompt.move_cursor(prompt.document.end)
        self._show_view("chat")
        prompt.focus()

    async def _remove_last(self, kind: type[AssistantMessage] | type[UserMessage]) -> None:
        widgets = list(self.chat_view.query(kind))
        if not widgets:
            return
        last = widgets[-1]
        if isinstance(last, AssistantMessage):
            self.records.pop(last.record.reply_id, None)
            if self._token_record_id == last.record.reply_id:
                self._token_record_id = None
                self.token_view.show_reply(None)
        await last.remove()

    async def action_new_chat(self) -> None:
        """Clear the transcript and start over (a reply in progress is cancelled)."""
        if self._active is not None:
            self._active.cancel.set()
        self.history.clear()
        self._unshown.clear()
        self.chat_session.new_chat()
        self.records.clear()
        self._token_record_id = None
        self.token_view.show_reply(None)
        await self.chat_view.query(".message").remove()
        self.chat_view.fold()
        self.status.context_used = 0
        self.status.live_tokens = 0
        self.post_message(self.NewChatStarted())
        self._show_view("chat")
        self.prompt.focus()

    def action_toggle_tokens(self) -> None:
        """Switch between the rendered chat and the token view."""
        showing_tokens = self.main_screen.query_one("#views", ContentSwitcher).current == "tokens"
        self._show_view("chat" if showing_tokens else "tokens")

    def _show_view(self, view: str) -> None:
        switcher = self.main_screen.query_one("#views", ContentSwitcher)
        switcher.current = view
        if view == "tokens":
            record = self.records.get(self._token_record_id) if self._token_record_id else None
            if self.token_view.record is not record:
                self.token_view.show_reply(record)
            self.token_view.reveal()
            self.token_view.focus()
        else:
            self.prompt.focus()

    def action_toggle_probability(self) -> None:
        """Colour tokens by probability, or back to alternating shades."""
        view = self.token_view
        view.color_by_probability = not view.color_by_probability
        self.notify("Tokens coloured by probability (red = unlikely, green = likely)"
                    if view.color_by_probability else "Tokens shaded alternately", timeout=3)  # fmt: skip

    def action_toggle_greedy(self) -> None:
        """Greedy mode on/off."""
        self.panel.toggle_greedy()

    def action_focus_panel(self) -> None:
        """Focus the first enabled field of the sampling panel."""
        for field_id in ("#field-temperature", "#field-repeat_penalty"):
            field = self.panel.query_one(field_id)
            if field.focusable:
                field.focus()
                return

    def action_reset_params(self) -> None:
        """Back to the default sampling parameters."""
        self.panel.reset()

    def action_save_default(self) -> None:
        """Save the current parameters as the default."""
        self.save_default(self.panel.params)

    async def on_event(self, event: events.Event) -> None:
        """A paste into a one-line field gets visible stand-ins for control characters: an Input
        draws its value raw, so a pasted escape sequence would reach the terminal."""
        if isinstance(event, events.Paste) and isinstance(self.focused, Input) and has_control(event.text):
            event = events.Paste(one_cell(event.text))
        await super().on_event(event)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Show a notification as plain text, always: messages hold chat titles, file names and model
        text, where ``[/]`` would raise a MarkupError, ``[@click=...]`` would become an action and an
        escape sequence would reach the terminal (control characters are shown as ␛ ...)."""
        super().notify(clean(message), title=clean(title), severity=severity, timeout=timeout, markup=False)

    def action_help(self) -> None:
        """Show the help screen."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Every action of the app in the command palette."""
        yield from super().get_system_commands(screen)
        yield SystemCommand("Cancel reply", "Stop the reply being generated (Esc)", self.action_cancel_reply)
        yield SystemCommand("Regenerate", "Generate the last reply again (ctrl+r)", self.action_regenerate)
        yield SystemCommand(
            "Edit last prompt", "Edit and resend the last prompt (ctrl+l)", self.action_edit_last
        )
        yield SystemCommand("New chat", "Start a new, empty chat (ctrl+n)", self.action_new_chat)
        yield SystemCommand(
            "Toggle token view", "Chat or token-by-token view (ctrl+t)", self.action_toggle_tokens
        )
        yield SystemCommand(
            "Colour tokens by probability",
            "Toggle probability colours (ctrl+o)",
            self.action_toggle_probability,
        )
        yield SystemCommand("Toggle greedy", "Greedy mode on/off (ctrl+g)", self.action_toggle_greedy)
        yield SystemCommand("Sampling panel", "Go to the sampling panel (f4)", self.action_focus_panel)
        yield SystemCommand(
            "Reset parameters", "Back to the default sampling parameters", self.action_reset_params
        )
        yield SystemCommand(
            "Save parameters as default", "Write them to the config file (ctrl+s)", self.action_save_default
        )
        yield SystemCommand("Help: parameters and keys", "What each parameter does (f1)", self.action_help)
        yield from self.chat_commands(screen)
        yield from self.inspector_commands()
        yield from self.model_commands(screen)


def run_app(settings: Settings, *, config_path: Path | None = None) -> int:
    """Run the app until the user quits; returns the exit code."""
    app = TokendialApp(settings, config_path=config_path)
    result = app.run()
    return result if isinstance(result, int) else (app.return_code or 0)
