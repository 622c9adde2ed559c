"""The engine: model loading, chat formatting, sampling, the token loop. Never imports Textual."""

# Load llama.cpp's libraries before numpy's. On the GPU machine (issue 9: CUDA build of
# llama-cpp-python 0.3.36, numpy 2.5.2 with its bundled OpenBLAS) importing numpy first made
# every model load crash with SIGSEGV right after "init_tokenizer"; importing llama_cpp first fixed it.
import contextlib

with contextlib.suppress(ImportError):  # a missing llama-cpp-python is reported when a model loads
    import llama_cpp  # noqa: F401

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
