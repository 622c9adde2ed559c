"""Engines that run the model elsewhere: llama.cpp's llama-server and OpenAI-compatible servers.

Each implements the ChatEngine protocol (tui/engine/protocol.py) like the local engine, so the app,
``generate`` and the chat store don't care where the model runs. No Textual here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tui.engine.backends.common import ServerConfig
from tui.engine.events import ModelLoadError
from tui.engine.protocol import ChatEngine, LoadConfig

if TYPE_CHECKING:
    from settings.config import Settings

__all__ = [
    "EngineChoice",
    "ServerConfig",
    "engine_factory_for",
    "open_server_engine",
    "read_api_key",
    "server_config",
]


def read_api_key(settings: Settings) -> str | None:
    """The API key: ``$TOKENDIAL_API_KEY``, else the first line of ``api_key_file``, else None."""
    from settings.config import API_KEY_ENV_VAR

    key = os.environ.get(API_KEY_ENV_VAR, "").strip()
    if key:
        return key
    if settings.api_key_file is None:
        return None
    try:
        lines = settings.api_key_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ModelLoadError(f"cannot read the API key file {settings.api_key_file}: {reason}") from None
    key = lines[0].strip() if lines else ""
    if not key:
        raise ModelLoadError(f"the API key file {settings.api_key_file} is empty")
    return key


def server_config(settings: Settings, *, top_n: int) -> ServerConfig:
    """The ServerConfig the settings describe (backend llama-server or openai)."""
    return ServerConfig(
        kind=str(settings.backend),
        url=settings.server_url,
        model=settings.server_model,
        api_key=read_api_key(settings),
        top_n=top_n,
        system_prompt=settings.system_prompt or None,
        probs=str(settings.server_probs),
    )


def open_server_engine(config: ServerConfig) -> ChatEngine:
    """Connect to the server in ``config`` (raises ModelLoadError with the cause when it can't)."""
    if config.kind == "llama-server":
        from tui.engine.backends.llama_server import LlamaServerEngine

        return LlamaServerEngine(config)
    from tui.engine.backends.openai import OpenAIEngine

    return OpenAIEngine(config)


def engine_factory_for(settings: Settings) -> Callable[[LoadConfig], ChatEngine] | None:
    """The app's engine factory for a server backend (None for ``local``).

    Each call connects afresh (and reads the API key again), so the app's retry after a
    "server not running" is just another load. The LoadConfig's top_n is honoured; its model
    path is not used (the model is the server's).
    """
    if str(settings.backend) == "local":
        return None

    def connect(config: LoadConfig) -> ChatEngine:
        return open_server_engine(server_config(settings, top_n=config.top_n))

    return connect


class EngineChoice:
    """The app's engine factory: its local factory, or the server the chosen backend names.

    The backend, server URL and model name come from ``settings`` (replaced, never mutated, when
    the user picks another backend in the app; the API key is read afresh on every connect from
    the environment or ``api_key_file``, and never kept in the settings).
    """

    def __init__(self, settings: Settings, local: Callable[[LoadConfig], ChatEngine]) -> None:
        self.settings = settings
        self.local = local

    @property
    def backend(self) -> str:
        """``local``, ``llama-server`` or ``openai``."""
        return str(self.settings.backend)

    @property
    def is_server(self) -> bool:
        """True when the model runs on a server."""
        return self.backend != "local"

    def choose(self, backend: str, url: str, model: str | None) -> None:
        """Connect to this backend from the next load on (the caller then reloads)."""
        from settings.config import Backend

        update = {"backend": Backend(backend), "server_url": url, "server_model": model or None}
        self.settings = self.settings.model_copy(update=update)

    def label(self, model_path: Path) -> str:
        """What is being loaded: the model file's name, or ``llama-server 127.0.0.1:8080``."""
        if not self.is_server:
            return model_path.name
        where = self.settings.server_url.split("://", 1)[-1].rstrip("/")
        model = f" ({self.settings.server_model})" if self.settings.server_model else ""
        return f"{self.backend} {where}{model}"

    def __call__(self, config: LoadConfig) -> ChatEngine:
        """Load the local model, or connect to the server (ModelLoadError with the cause)."""
        if not self.is_server:
            return self.local(config)
        return open_server_engine(server_config(self.settings, top_n=config.top_n))
