"""Fixtures for the reliability matrix: async Pilot tests, the real model shared per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tui.tui_app_helpers import pytest_pyfunc_call
from tui.engine.llama_engine import LlamaEngine, load_engine
from tui.engine.protocol import LoadConfig

__all__ = ["pytest_pyfunc_call"]
"""``async def`` tests run in a fresh event loop, as in tests/tui."""


@pytest.fixture(scope="module")
def real_engine(model_path: Path) -> Iterator[LlamaEngine]:
    """The real default model, loaded once per test module (n_ctx 512, 2 threads)."""
    engine = load_engine(LoadConfig(model_path=model_path, n_ctx=512, n_threads=2, top_n=5))
    yield engine
    engine.close()
