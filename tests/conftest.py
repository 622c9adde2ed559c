"""Shared fixtures: the real default model, and isolation from the user's own config and data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEST_MODEL = REPO_ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
_KEEP_ENV = {
    "TOKENDIAL_TEST_MODEL",
    "TOKENDIAL_REQUIRE_MODEL",
    "TOKENDIAL_DEBUG",
    "TOKENDIAL_LLAMA_TOOLS_CACHE",
}


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the user config/data dirs at a temp folder and drop TOKENDIAL_* settings from the environment.

    So no test reads or writes the developer's real config.toml or chat database.
    """
    home = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    for name in list(os.environ):
        if name.upper().startswith("TOKENDIAL_") and name.upper() not in _KEEP_ENV:
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The real default GGUF model (TOKENDIAL_TEST_MODEL or models/); missing: skip, or fail in CI."""
    named = os.environ.get("TOKENDIAL_TEST_MODEL")
    path = Path(named).expanduser() if named else DEFAULT_TEST_MODEL
    if not path.is_file():
        message = f"test model not found at {path}: run `tokendial fetch` (or set TOKENDIAL_TEST_MODEL)"
        if os.environ.get("TOKENDIAL_REQUIRE_MODEL") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path
