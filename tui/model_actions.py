"""The model part of the app: loading at start-up, the picker (F2), a quick check, a fresh engine thread.

A collaborator of :class:`~tui.app.TokendialApp` (composed, not mixed in): it gets the model slot,
the reply flow, the store session, the views and a notifier. A model that fails to load leaves
the app open with the reason in the transcript; the user picks another file here. The chosen file
is checked first (exists, readable, GGUF header), so an obviously bad choice keeps the model
already loaded; a file llama.cpp itself refuses shows its reason like at start-up.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import App

from settings.config import Settings
from tui.core.state import ModelState
from tui.core.text import one_line
from tui.engine.backends import EngineChoice, read_api_key
from tui.engine.events import ModelInfo, ModelLoadError
from tui.engine.model import check_model_file
from tui.engine.protocol import LoadConfig
from tui.library.thinking import ThinkingStyle, model_thinking_style
from tui.reply_flow import ReplyFlow
from tui.screens.backend_picker import BackendChoice, BackendPickerScreen
from tui.screens.model_picker import ModelPickerScreen
from tui.store.session import ChatSession
from tui.views import MainViews, Notifier, is_open
from tui.widgets.chat_view import Notice
from tui.worker import ModelLoaded, ModelLoadFailed, ModelSlot, ReplyFinished, error_done

LOAD_FAILED_HELP = (
    "What to do: press F2 to load another model (a .gguf file from the models folder, or a path), "
    "run `tokendial fetch` to install the default model, or point `model_path` at a GGUF file "
    "(flag --model-path, env TOKENDIAL_MODEL_PATH, or the config file)."
)
SERVER_FAILED_HELP = (
    "What to do: press f10 to try again once the server is up, or f12 to pick another backend, "
    "server URL or model name (flags --backend, --server-url, --server-model)."
)


class ModelActions:
    """Load the model, and pick and load another one while the app runs."""

    def __init__(
        self,
        app: App[Any],
        settings: Settings,
        model: ModelSlot,
        replies: ReplyFlow,
        session: ChatSession,
        views: MainViews,
        notify: Notifier,
        engines: EngineChoice,
    ) -> None:
        self._app = app
        self.settings = settings
        self.engines = engines
        """The app's engine factory: which backend the next load uses."""
        self.model = model
        self.replies = replies
        self.session = session
        self.views = views
        self.notify = notify

    def start(self) -> None:
        """Show the loading state and start loading the model in the background."""
        path = self.model.config.model_path
        self.views.chat_view.thinking = ThinkingStyle(hidden=self.settings.hide_thinking)
        self.views.status.show_loading(self.engines.label(path))
        self.views.chat_view.mount(self._loading_notice(path))
        self.model.worker.start()

    def _loading_notice(self, path: Path) -> Notice:
        label = self.engines.label(path)
        what = f"Connecting to {label}" if self.engines.is_server else f"Loading model {path}"
        return Notice(f"{one_line(what, 130)} …", classes="loading", id="load-notice")

    def loaded(self, message: ModelLoaded) -> None:
        """Show the model in the status bar."""
        self.model.state = ModelState.READY
        status = self.views.status
        status.set_model(message.info)
        if self.replies.busy:
            status.state = ModelState.GENERATING
        for notice in self.views.chat_view.query("#load-notice"):
            notice.remove()
        for warning in message.info.warnings:
            self.notify(one_line(warning), title="Model", severity="warning", timeout=10)
        self._template_word(message.info)
        self.views.chat_view.thinking = model_thinking_style(
            message.info.path, self.settings.chat_template, hidden=self.settings.hide_thinking
        )

    def toggle_thinking(self) -> None:
        """Open or fold the thinking section of the last reply that has one."""
        if not self.views.chat_view.toggle_thinking():
            hidden = " (hidden: setting hide_thinking)" if self.settings.hide_thinking else ""
            self.notify(f"No reply on screen has a thinking section{hidden}.", title="Thinking")

    def _template_word(self, info: ModelInfo) -> None:
        """Say so when the model has no chat template; an empty chat takes the model's default mode."""
        modes = self.replies.modes
        notice = modes.model_loaded(info, chat_is_empty=not self.replies.conversation.turns)
        self.session.mode_changed(modes.mode)
        for old in self.views.chat_view.query("#template-notice"):
            old.remove()
        if notice:
            mode = f"This chat is in {modes.label} mode (f8 switches)."
            self.views.chat_view.mount(Notice(f"{notice} {mode}", classes="warning", id="template-notice"))
            self.notify(one_line(notice, 300), title="No chat template", severity="warning", timeout=10)

    def toggle_mode(self) -> None:
        """Switch this chat between chat and text completion."""
        modes = self.replies.modes
        modes.toggle()
        self.session.mode_changed(modes.mode)
        what = (
            "completion mode: the model continues your text (no chat template, no system prompt)"
            if modes.raw
            else "chat mode: the chat template applies"
        )
        self.notify(f"This chat is now in {what}.", title="Mode")

    async def load_failed(self, message: ModelLoadFailed) -> None:
        """Show why the model did not load and what to do, in the transcript."""
        self.model.state = ModelState.FAILED
        server = self.engines.is_server
        self.views.status.set_failed("f10 retries, f12 picks another server" if server else "")
        chat = self.views.chat_view
        for notice in chat.query("#load-notice, #load-error"):
            notice.remove()
        text = Text()
        what = f"No connection to {self.engines.label(self.model.config.model_path)}." if server else ""
        text.append(what or "The model could not be loaded.", style="bold")
        text.append("\n" + one_line(message.message, 500) + "\n")
        if message.hint:
            text.append(one_line(message.hint, 500) + "\n")
        text.append(SERVER_FAILED_HELP if server else LOAD_FAILED_HELP, style="italic")
        await chat.mount(Notice(text, classes="error", id="load-error"))
        job = self.replies.job
        if job is not None:
            done = error_done("the model is not loaded")
            live = self.replies.conversation.live
            self._app.post_message(ReplyFinished(job.reply_id, done, job.messages, live.params, ()))

    def _switch_refused(self) -> bool:
        """Notify and return True when a model can't be switched now (loading, or a reply running)."""
        if self.model.state is ModelState.LOADING:
            self.notify("A model is loading: wait until it has loaded (or failed).", severity="warning")
            return True
        if self.replies.busy:
            self.notify("A reply is being generated: press Esc to cancel it first.", severity="warning")
            return True
        return False

    def pick(self) -> None:
        """Open the model picker; the chosen file is loaded instead of the current model."""
        if is_open(self._app, ModelPickerScreen) or self._switch_refused():
            return

        async def chosen(path: Path | None) -> None:
            if path is not None:
                await self.switch_model(path)

        settings = self.settings
        picker = ModelPickerScreen(
            settings.models_dir,
            self.model.config.model_path,
            library_dirs=settings.library_dirs,
            n_ctx=settings.n_ctx,
            data_dir=settings.data_dir,
        )
        self._app.push_screen(picker, chosen)

    async def switch_model(self, path: Path) -> bool:
        """Load ``path`` instead of the current model; False (with a notification) if refused."""
        if self._switch_refused():
            return False
        path = path.expanduser()
        try:
            check_model_file(path)
        except ModelLoadError as exc:
            detail = f"{exc.message}\n{exc.hint}".strip()
            kept = "" if self.model.state is ModelState.FAILED else "\nThe current model stays loaded."
            self.notify(one_line(detail, 400) + kept, title="Model not loaded", severity="error", timeout=10)
            return False
        if self.engines.is_server:  # a model file runs here: back to the local backend
            chosen = self.engines.settings
            self.engines.choose("local", chosen.server_url, chosen.server_model)
            self.notify(
                "The model file runs in this process (backend local; f12 picks a server).", title="Model"
            )
        self.session.set_model(path)
        await self._reload(dataclasses.replace(self.model.config, model_path=path))
        return True

    async def _reload(self, config: LoadConfig) -> None:
        """A fresh engine thread for ``config`` (the chosen backend), with the loading state shown."""
        worker = self.model.replace(config)
        self.views.status.show_loading(self.engines.label(config.model_path))
        chat = self.views.chat_view
        await chat.query("#load-error, #load-notice").remove()
        await chat.mount(self._loading_notice(config.model_path))
        chat.scroll_end(animate=False)
        worker.start()

    async def retry(self) -> None:
        """Try again to load the model or connect to the server (after it failed)."""
        if self.model.state is not ModelState.FAILED:
            state = "is loading" if self.model.state is ModelState.LOADING else "is loaded"
            self.notify(f"Nothing to retry: the model {state}.", title="Retry")
            return
        await self._reload(self.model.config)

    def current_backend(self) -> BackendChoice:
        """The backend, server URL and model name in use."""
        chosen = self.engines.settings
        return BackendChoice(str(chosen.backend), chosen.server_url, chosen.server_model)

    def pick_backend(self) -> None:
        """Open the backend dialog; the choice is connected to instead of the current engine."""
        if is_open(self._app, BackendPickerScreen) or self._switch_refused():
            return

        async def chosen(choice: BackendChoice | None) -> None:
            if choice is not None:
                await self.switch_backend(choice)

        self._app.push_screen(BackendPickerScreen(self.current_backend(), key_note=self._key_note()), chosen)

    def _key_note(self) -> str:
        """Where the API key comes from and whether there is one (never the key itself)."""
        try:
            found = read_api_key(self.engines.settings) is not None
        except ModelLoadError as exc:
            return f"API key: {one_line(exc.message, 200)}"
        where = "$TOKENDIAL_API_KEY or api_key_file; it is never stored"
        return f"API key: {'found' if found else 'none'} ({where})."

    async def switch_backend(self, choice: BackendChoice) -> bool:
        """Run the model on ``choice`` from now on (a fresh engine, as a model switch); False if refused."""
        if self._switch_refused():
            return False
        self.engines.choose(choice.backend, choice.url, choice.model)
        await self._reload(self.model.config)
        return True
