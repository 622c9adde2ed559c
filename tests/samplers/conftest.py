"""Sampler tests: the TUI tests' helpers (async runner, fake app) and one real engine per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tui.tui_app_helpers import pytest_pyfunc_call
from tui.engine.llama_engine import LlamaEngine, load_engine
from tui.engine.protocol import LoadConfig

__all__ = ["engine", "pytest_pyfunc_call"]


@pytest.fixture(scope="module")
def engine(model_path: Path) -> Iterator[LlamaEngine]:
    """The real default model, loaded once per test module (one thread, n_ctx 1024)."""
    loaded = load_engine(
        LoadConfig(model_path=model_path, n_ctx=1024, n_threads=1, top_n=10, system_prompt="")
    )
    yield loaded
    loaded.close()
