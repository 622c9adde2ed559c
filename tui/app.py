"""The tokendial Textual app: lifecycle, screens and wiring of its parts.

The app owns no chat state. The :class:`~tui.core.conversation.Conversation` (no Textual) holds
the chat; the chat store observes it; the parts render it and change it:
:class:`~tui.reply_flow.ReplyFlow` (send, stream, finish, regenerate, edit, new chat),
:class:`~tui.chat_actions.ChatActions` (saved chats), :class:`~tui.inspector_actions.InspectorActions`
(the token inspector and branches) and :class:`~tui.model_actions.ModelActions` (loading models).
The app's handlers and actions are one-line delegations to them. See tui/README.md for the code map.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Input

from settings.config import ConfigWriteError, Settings, save_default_sampling
from settings.sampling import DEFAULT_PRESETS, SamplingParams
from tui.chat_actions import ChatActions
from tui.core.autosave import Autosave
from tui.core.branches import BranchBook
from tui.core.conversation import Conversation
from tui.core.reply import ReplyRecord
from tui.core.state import ModelState
from tui.core.text import clean, has_control, one_cell
from tui.engine.events import ChatMessage, ModelLoadError
from tui.engine.live import LiveParams
from tui.engine.protocol import ChatEngine, LoadConfig
from tui.inspector_actions import InspectorActions
from tui.model_actions import ModelActions
from tui.pacing import RedrawPacer
from tui.reply_flow import ReplyFlow
from tui.screens.chat_list import ChatListScreen
from tui.screens.help import HelpScreen
from tui.screens.main import MainScreen
from tui.store.session import ChatSession
from tui.views import AppNotifier, MainViews
from tui.widgets.chat_view import ChatView
from tui.widgets.inspector import Inspector
from tui.widgets.prompt_input import PromptInput
from tui.widgets.sampling_panel import SamplingPanel
from tui.widgets.status_bar import StatusBar
from tui.widgets.token_view import TokenView
from tui.worker import (
    EngineFactory,
    EngineWorker,
    ModelLoaded,
    ModelLoadFailed,
    ModelSlot,
    ReplyFinished,
    TokensStreamed,
)

__all__ = ["ReplyFinished", "TokendialApp", "run_app"]


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


class TokendialApp(App[int]):
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
        self.presets: dict[str, SamplingParams] = {**DEFAULT_PRESETS, **settings.presets}
        live = LiveParams(settings.sampling)
        self.conversation = Conversation(live, system_prompt=settings.system_prompt)
        """The chat on screen: the one copy (the store and the widgets follow it)."""
        config = load_config_for(settings)
        self.model = ModelSlot(EngineWorker(self, engine_factory, config, live, batch_s=batch_s), config)
        self.views = MainViews(self)
        notify = AppNotifier(self)
        session, problem = ChatActions.open_session(settings)
        self.chat_session: ChatSession = session
        self.conversation.observe(Autosave(session))
        self.replies = ReplyFlow(
            self, self.conversation, self.model, self.views, notify, batch_s=batch_s
        )
        self.chats = ChatActions(
            self, settings, session, self.replies, self.views, notify,
            new_chat=self.action_new_chat, store_problem=problem,
        )  # fmt: skip
        session.on_error = self.chats.store_failed
        session.set_model(config.model_path)
        self.inspection = InspectorActions(
            self, self.conversation, self.replies, self.model, self.views, notify
        )
        self.models = ModelActions(self, settings, self.model, self.replies, session, self.views, notify)

    # -- lifecycle -------------------------------------------------------------------------
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
        self.models.start()
        self.chats.report_store_problem()

    def on_unmount(self) -> None:
        """Stop the engine thread."""
        self.model.worker.shutdown()
        self.chat_session.store.close()

    # -- what the parts hold, for tests and scripts ---------------------------------------
    @property
    def live(self) -> LiveParams:
        """The parameters the token loop reads before every token."""
        return self.conversation.live

    @property
    def history(self) -> list[ChatMessage]:
        """The conversation as the engine sees it (without the system prompt)."""
        return self.conversation.history

    @property
    def records(self) -> dict[int, ReplyRecord]:
        """Every reply in the conversation, by id."""
        return self.conversation.records

    @property
    def params_by_version(self) -> dict[int, SamplingParams]:
        """Every live parameter version set."""
        return self.conversation.params_by_version

    @property
    def model_state(self) -> ModelState:
        """Where the model is in its life."""
        return self.model.state

    @property
    def engine_worker(self) -> EngineWorker:
        """The thread that owns the model."""
        return self.model.worker

    @property
    def busy(self) -> bool:
        """True while a reply is queued or being generated."""
        return self.replies.busy

    @property
    def pacer(self) -> RedrawPacer:
        """How often streamed tokens are drawn."""
        return self.replies.pacer

    @property
    def reply_observers(self) -> list[Callable[[ReplyFinished], None]]:
        """Listeners called with every ReplyFinished (step 2 of ``ReplyFlow.reply_finished``)."""
        return self.replies.listeners

    @property
    def branches(self) -> BranchBook:
        """The branches of the conversation's replies."""
        return self.conversation.branches

    @property
    def inspector_open(self) -> bool:
        """Whether the token inspector is shown."""
        return self.inspection.open

    @property
    def inspector(self) -> Inspector | None:
        """The inspector widget, once mounted."""
        return self.views.inspector

    @property
    def main_screen(self) -> Screen[None]:
        """The main screen (also while a dialog is on top of it)."""
        return self.views.main_screen

    @property
    def chat_view(self) -> ChatView:
        """The transcript."""
        return self.views.chat_view

    @property
    def token_view(self) -> TokenView:
        """The token-stream view."""
        return self.views.token_view

    @property
    def status(self) -> StatusBar:
        """The status bar."""
        return self.views.status

    @property
    def panel(self) -> SamplingPanel:
        """The sampling panel."""
        return self.views.panel

    @property
    def prompt(self) -> PromptInput:
        """The prompt box."""
        return self.views.prompt

    async def send_prompt(self, text: str) -> bool:
        """Send ``text``; False (with a note) if not possible now."""
        return await self.replies.send_prompt(text)

    async def open_stored_chat(self, chat_id: int) -> bool:
        """Show a saved chat."""
        return await self.chats.open_stored_chat(chat_id)

    def export_chat(self, kind: str) -> Path | None:
        """Export the chat on screen (``md`` or ``json``)."""
        return self.chats.export_chat(kind)

    async def import_chat(self, path: Path) -> int | None:
        """Import a JSON export and open it."""
        return await self.chats.import_chat(path)

    async def switch_model(self, path: Path) -> bool:
        """Load another model."""
        return await self.models.switch_model(path)

    async def branch(self, reply_id: int, index: int, token_id: int, *, confirmed: bool = False) -> bool:
        """Continue a reply from another candidate token."""
        return await self.inspection.branch(reply_id, index, token_id, confirmed=confirmed)

    # -- messages from the worker and the widgets: to the part that owns them ----------------
    def on_model_loaded(self, message: ModelLoaded) -> None:
        """The model is ready."""
        self.models.loaded(message)

    async def on_model_load_failed(self, message: ModelLoadFailed) -> None:
        """The model did not load."""
        await self.models.load_failed(message)

    async def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        """Send the prompt."""
        await self.replies.send_prompt(message.text)

    async def on_tokens_streamed(self, message: TokensStreamed) -> None:
        """A batch of tokens."""
        await self.replies.tokens_streamed(message)

    async def on_reply_finished(self, message: ReplyFinished) -> None:
        """A reply ended."""
        await self.replies.reply_finished(message)

    def on_sampling_panel_params_changed(self, message: SamplingPanel.ParamsChanged) -> None:
        """New parameters: the next token uses them."""
        self.conversation.set_params(message.params)

    def on_sampling_panel_save_default_requested(self, message: SamplingPanel.SaveDefaultRequested) -> None:
        """Write the parameters to the config file."""
        self.save_default(message.params)

    def on_token_view_token_selected(self, message: TokenView.TokenSelected) -> None:
        """The token cursor moved."""
        self.inspection.token_selected()

    async def on_token_view_token_clicked(self, message: TokenView.TokenClicked) -> None:
        """A token was clicked: the inspector opens on it."""
        await self.inspection.token_clicked(message)

    def on_token_view_reply_step_requested(self, message: TokenView.ReplyStepRequested) -> None:
        """shift+←/→ in the token view."""
        self.inspection.reply_step(message.delta)

    async def on_inspector_branch_requested(self, message: Inspector.BranchRequested) -> None:
        """Continue a reply from another candidate."""
        await self.inspection.branch(message.reply_id, message.index, message.token_id)

    def on_inspector_closed(self, message: Inspector.Closed) -> None:
        """Esc in the inspector."""
        self.inspection.close_inspector()

    def on_chat_list_screen_chat_deleted(self, message: ChatListScreen.ChatDeleted) -> None:
        """A chat was deleted in the chat list."""
        self.chats.chat_deleted(message)

    def save_default(self, params: SamplingParams) -> None:
        """Save ``params`` as the default sampling parameters in the TOML config."""
        try:
            path = save_default_sampling(params, self.config_path)
        except ConfigWriteError as exc:
            self.notify(str(exc), title="Not saved", severity="error", timeout=10)
            return
        self.panel.defaults = params
        self.notify(f"Saved as the default in {path}", title="Sampling")

    # -- actions (the keys and the command palette): one line each ----------------------------
    def action_cancel_reply(self) -> None:
        """Cancel the reply being generated; its partial text stays, marked cancelled."""
        self.replies.cancel()

    async def action_regenerate(self) -> None:
        """Generate the last reply again with the current parameters."""
        await self.replies.regenerate()

    async def action_edit_last(self) -> None:
        """Take back the last prompt (and its reply) and put it in the prompt box."""
        await self.replies.edit_last()

    async def action_new_chat(self) -> None:
        """Clear the transcript and start over (a reply in progress is cancelled)."""
        await self.replies.new_chat()
        self.inspection.chat_cleared()

    def action_toggle_tokens(self) -> None:
        """Switch between the rendered chat and the token view."""
        self.views.show("chat" if self.views.showing_tokens else "tokens")

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

    def action_help(self) -> None:
        """Show the help screen."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_chats(self) -> None:
        """Show the saved chats: open, rename, delete, search."""
        self.chats.show_chats()

    def action_export_markdown(self) -> None:
        """Export the chat on screen to Markdown."""
        self.chats.export_chat("md")

    def action_export_json(self) -> None:
        """Export the chat on screen to JSON (complete, re-importable)."""
        self.chats.export_chat("json")

    def action_import_json(self) -> None:
        """Ask for a JSON export file, import it and open it."""
        self.chats.ask_import()

    def action_fresh_chat_database(self) -> None:
        """Move a damaged chat database aside and start an empty one."""
        self.chats.fresh_database()

    def action_toggle_keep_events(self) -> bool | None:
        """Keep this chat's token events for good, or stop doing so."""
        return self.chats.toggle_keep_events()

    def action_pick_model(self) -> None:
        """Open the model picker."""
        self.models.pick()

    async def action_inspect(self) -> None:
        """``i``: open the inspector; again: go into it; again: close it."""
        await self.inspection.inspect()

    def action_least_confident(self) -> None:
        """``u``: select the token the model was least sure of."""
        self.inspection.least_confident()

    async def action_sibling(self, delta: int) -> None:
        """``[`` / ``]``: show the previous / next branch of the last reply."""
        await self.inspection.sibling(delta)

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
        yield SystemCommand("Inspector: open / go into / close", "The candidates behind a token (i)",
                            self.action_inspect)  # fmt: skip
        yield SystemCommand("Inspector: least sure token", "Select the token the model was least sure of (u)",
                            self.action_least_confident)  # fmt: skip
        yield SystemCommand("Branches: previous", "Show the previous branch of the last reply ([)",
                            lambda: self.run_worker(self.action_sibling(-1)))  # fmt: skip
        yield SystemCommand("Branches: next", "Show the next branch of the last reply (])",
                            lambda: self.run_worker(self.action_sibling(1)))  # fmt: skip
        yield SystemCommand(
            "Load another model", "Pick a GGUF file from the models folder or type a path (f2)",
            self.action_pick_model,
        )  # fmt: skip

    def chat_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The saved-chat commands for the command palette."""
        yield SystemCommand("Chats: open, rename, delete, search", "The saved chats (f3)", self.action_chats)
        yield SystemCommand("Chats: export to Markdown", "Readable, with parameters and stop reasons",
                            self.action_export_markdown)  # fmt: skip
        yield SystemCommand("Chats: export to JSON", "Complete and re-importable", self.action_export_json)
        yield SystemCommand(
            "Chats: import from JSON", "Add a chat exported by tokendial", self.action_import_json
        )
        yield SystemCommand(
            "Chats: keep token events of this chat",
            "Exempt its token events (and candidates) from pruning, or stop doing so",
            self.action_toggle_keep_events,
        )
        if self.chats.corrupt_store:
            yield SystemCommand(
                "Chats: start a fresh database",
                "Move the damaged chat database aside and save chats again",
                self.action_fresh_chat_database,
            )


def run_app(settings: Settings, *, config_path: Path | None = None) -> int:
    """Run the app until the user quits; returns the exit code."""
    app = TokendialApp(settings, config_path=config_path)
    result = app.run()
    return result if isinstance(result, int) else (app.return_code or 0)
