"""Sampler tests: the TUI tests' helpers (async runner, fake app) and one real engine per module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui.engine.llama_engine import LlamaEngine, load_engine
from tui.engine.protocol import LoadConfig

_TUI_TESTS = str(Path(__file__).resolve().parents[1] / "tui")
if _TUI_TESTS not in sys.path:  # the TUI tests' helpers, imported by bare name as they are there
    sys.path.insert(0, _TUI_TESTS)

from tui_app_helpers import pytest_pyfunc_call  # noqa: E402

__all__ = ["engine", "pytest_pyfunc_call"]


@pytest.fixture(scope="module")
def engine(model_path: Path) -> Iterator[LlamaEngine]:
    """The real default model, loaded once per test module (one thread, n_ctx 1024)."""
    loaded = load_engine(
        LoadConfig(model_path=model_path, n_ctx=1024, n_threads=1, top_n=10, system_prompt="")
    )
    yield loaded
    loaded.close()
