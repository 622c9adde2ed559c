"""The engine: model loading, chat formatting, sampling, the token loop. Never imports Textual."""

from tui.engine.events import (
    Candidate,
    ChatMessage,
    CutBy,
    EngineError,
    EngineEvent,
    ModelInfo,
    ModelLoadError,
    PromptProgress,
    PromptTrimmed,
    ReplyDone,
    StopKind,
    StopReason,
    TokenEvent,
)
from tui.engine.live import LiveParams
from tui.engine.protocol import ChatEngine, LoadConfig

__all__ = [
    "Candidate",
    "ChatEngine",
    "ChatMessage",
    "CutBy",
    "EngineError",
    "EngineEvent",
    "LiveParams",
    "LoadConfig",
    "ModelInfo",
    "ModelLoadError",
    "PromptProgress",
    "PromptTrimmed",
    "ReplyDone",
    "StopKind",
    "StopReason",
    "TokenEvent",
]
