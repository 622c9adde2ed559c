"""One way from the settings to a loaded model's configuration, for the app and ``generate`` alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.engine.protocol import LoadConfig

if TYPE_CHECKING:
    from settings.config import Settings


def load_config(settings: Settings, *, top_n: int | None = None) -> LoadConfig:
    """The LoadConfig the settings describe: their model (the default model when no model_path is
    set), context, GPU layers, threads, chat template and candidate count (``top_n`` overrides it).

    The system prompt is not part of it: :meth:`tui.core.conversation.Conversation.messages` adds
    it, the one place it is added.
    """
    return LoadConfig(
        model_path=settings.model_path or settings.default_model_path,
        n_ctx=settings.n_ctx,
        n_gpu_layers=settings.n_gpu_layers,
        n_threads=settings.n_threads,
        chat_template=settings.chat_template,
        top_n=settings.top_n if top_n is None else top_n,
    )
