"""Library tests: the default model without its chat template (a real template-less model)."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest

from tests.library.gguf_files import copy_without_template


@pytest.fixture(scope="session")
def no_template_model(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model's tensors and metadata with ``tokenizer.chat_template`` removed."""
    return copy_without_template(model_path, tmp_path_factory.mktemp("base") / "SmolLM2-no-template.gguf")


def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run the ``async def`` (Pilot) tests in a fresh event loop, like tests/tui does."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True
