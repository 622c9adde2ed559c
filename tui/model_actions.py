"""The app's side of switching models: the picker (F2), a quick check, then a fresh engine thread.

A mixin of :class:`~tui.app.TokendialApp` (like :mod:`tui.chat_actions`). A model that fails to
load leaves the app open with the reason in the transcript; the user picks another file here.
The chosen file is checked first (exists, readable, GGUF header), so an obviously bad choice
keeps the model already loaded; a file llama.cpp itself refuses shows its reason like at start-up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, cast

from textual.app import SystemCommand
from textual.screen import Screen

from tui.engine.events import ModelLoadError
from tui.engine.model import check_model_file
from tui.screens.model_picker import ModelPickerScreen
from tui.widgets.chat_view import Notice
from tui.widgets.safe_text import one_line
from tui.widgets.status_bar import ModelState

if TYPE_CHECKING:
    from tui.app import TokendialApp


class ModelActions:
    """Pick and load another model while the app runs."""

    @property
    def _app(self) -> TokendialApp:
        """This object as the app it is mixed into."""
        return cast("TokendialApp", self)

    def _model_switch_refused(self) -> bool:
        """Notify and return True when a model can't be switched now (loading, or a reply running)."""
        app = self._app
        if app.model_state is ModelState.LOADING:
            app.notify("A model is loading: wait until it has loaded (or failed).", severity="warning")
            return True
        if app.busy:
            app.notify("A reply is being generated: press Esc to cancel it first.", severity="warning")
            return True
        return False

    def action_pick_model(self) -> None:
        """Open the model picker; the chosen file is loaded instead of the current model."""
        app = self._app
        if self._model_switch_refused():
            return

        async def chosen(path: Path | None) -> None:
            if path is not None:
                await app.switch_model(path)

        app.push_screen(ModelPickerScreen(app.settings.models_dir, app._load_config.model_path), chosen)

    async def switch_model(self, path: Path) -> bool:
        """Load ``path`` instead of the current model; False (with a notification) if refused."""
        app = self._app
        if self._model_switch_refused():
            return False
        path = path.expanduser()
        try:
            check_model_file(path)
        except ModelLoadError as exc:
            detail = f"{exc.message}\n{exc.hint}".strip()
            kept = "" if app.model_state is ModelState.FAILED else "\nThe current model stays loaded."
            app.notify(one_line(detail, 400) + kept, title="Model not loaded", severity="error", timeout=10)
            return False
        app.engine_worker.shutdown()  # the old thread closes its engine and ends
        config = dataclasses.replace(app._load_config, model_path=path)
        app._load_config = config
        app.engine_worker = app.engine_worker.replaced(config)
        app.model_state = ModelState.LOADING
        app.status.show_loading(path.name)
        await app.chat_view.query("#load-error, #load-notice").remove()
        await app.chat_view.mount(
            Notice(f"Loading model {one_line(str(path), 120)} …", classes="loading", id="load-notice")
        )
        app.chat_view.scroll_end(animate=False)
        app.chat_session.set_model(path)
        app.engine_worker.start()
        return True

    def model_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The model commands for the command palette."""
        app = self._app
        yield SystemCommand(
            "Load another model", "Pick a GGUF file from the models folder or type a path (f2)",
            app.action_pick_model,
        )  # fmt: skip
