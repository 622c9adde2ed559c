"""Server backend tests: a real llama-server on 127.0.0.1 with the default model, one per session."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.llama_tools import LlamaTools
from tests.servers.server_helpers import server_config
from tests.servers.server_procs import ServerProcess, llama_cpp_python_server, llama_server, require_tools
from tui.engine.backends.llama_server import LlamaServerEngine


def _tui_app_helpers() -> ModuleType:
    """tests/tui/tui_app_helpers.py as a module (for its async test hook; no fixtures registered)."""
    path = Path(__file__).parent.parent / "tui" / "tui_app_helpers.py"
    spec = importlib.util.spec_from_file_location("tokendial_servers_tui_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pytest_pyfunc_call = _tui_app_helpers().pytest_pyfunc_call
"""Run the ``async def`` (Pilot) tests in a fresh event loop, as tests/tui does."""


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
