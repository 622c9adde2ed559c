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
from textual.binding import BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Input

from settings.config import ConfigWriteError, Settings, save_default_sampling
from settings.sampling import DEFAULT_PRESETS, SamplingParams
from tui.chat_actions import ChatActions
from tui.commands import bindings, current_keys, palette_entries, unknown_keymap_ids
from tui.compare_actions import CompareActions
from tui.core.autosave import Autosave
from tui.core.branches import BranchBook
from tui.core.conversation import Conversation
from tui.core.loading import load_config
from tui.core.reply import ReplyRecord
from tui.core.state import ModelState
from tui.core.text import clean, has_control, one_cell
from tui.engine.backends import EngineChoice
from tui.engine.events import ChatMessage, ModelLoadError
from tui.engine.live import LiveParams
from tui.engine.protocol import ChatEngine, LoadConfig
from tui.inspector_actions import InspectorActions
from tui.model_actions import ModelActions
from tui.pacing import RedrawPacer
from tui.reply_flow import ReplyFlow
from tui.sampler_actions import SamplerActions
from tui.screens.chat_list import ChatListScreen
from tui.screens.help import HelpScreen
from tui.screens.main import MainScreen
from tui.screens.unsaved import ask_before_quit, watch_save_state
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


class TokendialApp(App[int]):
    """Chat with a local GGUF model; a live sampling panel; a token view that shows why replies stop."""

    CSS_PATH = "app.tcss"
    TITLE = "tokendial"

    BINDINGS: ClassVar[list[BindingType]] = list(bindings())
    """From the command table (tui/commands.py), which also makes the palette and the help's key list."""

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
        self.set_keymap(settings.keymap)
        self.keys = current_keys(settings.keymap)
        """Binding id -> the key(s) it has (the keymap applied): for the palette and the help."""
        self.config_path = config_path
        """The config file "save as default" writes (None: the default location)."""
        self.presets: dict[str, SamplingParams] = {**DEFAULT_PRESETS, **settings.presets}
        live = LiveParams(settings.sampling)
        self.conversation = Conversation(live, system_prompt=settings.system_prompt)
        """The chat on screen: the one copy (the store and the widgets follow it)."""
        config = load_config(settings)
        self.engines = EngineChoice(settings, engine_factory)
        """The engine factory: ``engine_factory`` for the local backend, else the chosen server."""
        self.model = ModelSlot(EngineWorker(self, self.engines, config, live, batch_s=batch_s), config)
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
        self.models = ModelActions(
            self, settings, self.model, self.replies, session, self.views, notify, self.engines
        )
        self.sampling = SamplerActions(self.conversation, self.model, self.views, notify)
        self.comparing = CompareActions(
            self, self.conversation, self.replies, self.model, self.views, notify,
            presets=self.presets, export_dir=self.chats.exports_dir,
        )  # fmt: skip

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
        unknown = unknown_keymap_ids(self.settings.keymap)
        if unknown:
            self.notify(
                f"keymap: no key binding has the id {', '.join(unknown)} (ignored). The ids are in the "
                "README (Keys).",
                title="Settings",
                severity="warning",
                timeout=10,
            )
        self.models.start()
        self.chats.report_store_problem()
        watch_save_state(self, self.chat_session, self.views.status)  # the "not saved" segment

    async def action_quit(self) -> None:
        """Quit; with unsaved chats, ask first and offer to export them."""
        ask_before_quit(self, self.chat_session, self.chats.exports_dir, self.exit)

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
        self.sampling.model_loaded(message.info)

    async def on_model_load_failed(self, message: ModelLoadFailed) -> None:
        """The model did not load (the one before it, if any, is closed already)."""
        await self.models.load_failed(message)
        self.sampling.model_gone()

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

    def on_inspector_bias_requested(self, message: Inspector.BiasRequested) -> None:
        """x / + / - on a candidate: ban or move its logit bias."""
        self.sampling.bias_requested(message)

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

    def action_compare(self) -> None:
        """Compare the prompt (the prompt box's, or the last one) under several settings."""
        self.comparing.open_compare()

    async def action_regenerate(self) -> None:
        """Generate the last reply again with the current parameters."""
        await self.replies.regenerate()

    async def action_edit_last(self) -> None:
        """Take back the last prompt (and its reply) and put it in the prompt box."""
        await self.replies.edit_last()

    def action_toggle_mode(self) -> None:
        """Switch this chat between chat and text completion."""
        self.models.toggle_mode()

    def action_toggle_thinking(self) -> None:
        """Open or fold the last reply's thinking section."""
        self.models.toggle_thinking()

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
            self.push_screen(HelpScreen(self.keys))

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

    def action_pick_backend(self) -> None:
        """Open the backend dialog (local, llama-server, openai; server URL, model name)."""
        self.models.pick_backend()

    async def action_retry_load(self) -> None:
        """Try again to connect to the server (or load the model) after it failed."""
        await self.models.retry()

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
        """Textual's own commands, then every command of the table (the key each has now in its help)."""
        yield from super().get_system_commands(screen)
        hidden = () if self.chats.corrupt_store else ("app.fresh_database",)
        for title, help_line, callback in palette_entries(self.keys, self.run_action, hidden=hidden):
            yield SystemCommand(title, help_line, callback)

    def chat_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The saved-chat commands of the palette."""
        return [c for c in self.get_system_commands(screen) if c.title.startswith("Chats:")]


def run_app(settings: Settings, *, config_path: Path | None = None) -> int:
    """Run the app until the user quits; returns the exit code."""
    app = TokendialApp(settings, load_llama_engine, config_path=config_path)
    result = app.run()
    return result if isinstance(result, int) else (app.return_code or 0)
