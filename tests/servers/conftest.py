"""Server backend tests: a real llama-server on 127.0.0.1 with the default model, one per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.llama_tools import LlamaTools
from tests.servers.server_helpers import server_config
from tests.servers.server_procs import ServerProcess, llama_cpp_python_server, llama_server, require_tools
from tests.tui.tui_app_helpers import pytest_pyfunc_call
from tui.engine.backends.llama_server import LlamaServerEngine

__all__ = ["pytest_pyfunc_call"]  # runs the ``async def`` (Pilot) tests in a fresh event loop, as tests/tui


@pytest.fixture(scope="session")
def tools() -> LlamaTools:
    """The built llama.cpp tools (skip, or fail in CI, when missing)."""
    found: LlamaTools = require_tools()
    return found


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the server processes write their logs."""
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def served(tools: LlamaTools, model_path: Path, server_logs: Path) -> Iterator[ServerProcess]:
    """One llama-server with the default model for the whole session."""
    process = llama_server(tools, model_path, server_logs)
    try:
        process.wait_http()
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def lcp_served(model_path: Path, server_logs: Path) -> Iterator[ServerProcess]:
    """llama-cpp-python's own server with the default model (needs no llama.cpp build)."""
    process = llama_cpp_python_server(model_path, server_logs)
    try:
        process.wait_http("/v1/models")
        yield process
    finally:
        process.stop()


@pytest.fixture
def engine(served: ServerProcess) -> Iterator[LlamaServerEngine]:
    """A llama-server engine on the session's server."""
    opened = LlamaServerEngine(server_config(served.url))
    yield opened
    opened.close()
