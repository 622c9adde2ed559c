"""Compare tests: one real engine per test module (the default model, one thread)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tui.engine.llama_engine import LlamaEngine, load_engine
from tui.engine.protocol import LoadConfig


@pytest.fixture(scope="module")
def engine(model_path: Path) -> Iterator[LlamaEngine]:
    """The real default model with n_ctx 1024, loaded once per module."""
    loaded = load_engine(LoadConfig(model_path=model_path, n_ctx=1024, n_threads=1, top_n=10))
    yield loaded
    loaded.close()
