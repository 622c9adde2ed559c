"""Engine tests: one real engine per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tui.engine.llama_engine import LlamaEngine, load_engine
from tui.engine.protocol import LoadConfig


@pytest.fixture(scope="module")
def engine(model_path: Path) -> Iterator[LlamaEngine]:
    """The real default model, loaded once per test module (n_ctx 1024).

    One thread: with two, llama.cpp's threads spin-wait and crawl when other jobs share the CPUs.
    """
    loaded = load_engine(
        LoadConfig(
            model_path=model_path,
            n_ctx=1024,
            n_threads=1,
            top_n=10,
            system_prompt="You are a helpful assistant.",
        )
    )
    yield loaded
    loaded.close()
