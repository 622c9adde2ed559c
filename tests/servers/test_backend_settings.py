"""The backend settings: flags, env, TOML; the API key from env or a file, never stored or shown."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from settings.config import Backend, ConfigError, load_settings, unknown_env_warnings
from tests.servers.server_procs import free_port
from tui.cli import parse_command_line
from tui.engine.backends import engine_factory_for, read_api_key, server_config
from tui.engine.events import ModelLoadError
from tui.engine.protocol import LoadConfig
from tui.headless import EXIT_FAILED, run_generate


def test_backend_from_flags_env_and_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = parse_command_line(["--backend", "openai", "--server-url", "http://box:8000/v1"])
    loaded = load_settings({k: parsed[k] for k in ("backend", "server_url")}, tmp_path / "none.toml")
    assert loaded.settings.backend is Backend.OPENAI and loaded.settings.server_url == "http://box:8000/v1"
    monkeypatch.setenv("TOKENDIAL_BACKEND", "llama-server")
    assert load_settings({}, tmp_path / "none.toml").settings.backend is Backend.LLAMA_SERVER
    monkeypatch.delenv("TOKENDIAL_BACKEND")
    toml = tmp_path / "config.toml"
    toml.write_text('backend = "openai"\nserver_model = "qwen"\nserver_probs = "raw"\n')
    settings = load_settings({}, toml).settings
    assert (settings.backend, settings.server_model, settings.server_probs) == ("openai", "qwen", "raw")
    assert load_settings({}, tmp_path / "none.toml").settings.backend is Backend.LOCAL  # the default


def test_bad_backend_values_are_one_line_each(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"backend": "vllm", "server_url": "gpu-box:8080"}, tmp_path / "none.toml")
    assert len(caught.value.lines) == 2
    assert any("backend" in line and "local, llama-server, openai" in line for line in caught.value.lines)
    assert any("server_url" in line for line in caught.value.lines)


def test_api_key_from_env_or_file_never_in_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    settings = load_settings(
        {"backend": "openai", "api_key_file": str(key_file)}, tmp_path / "x.toml"
    ).settings
    assert read_api_key(settings) == "from-file"
    monkeypatch.setenv("TOKENDIAL_API_KEY", "from-env")
    assert unknown_env_warnings() == []  # not mistaken for a misspelt setting
    config = server_config(settings, top_n=5)
    assert config.api_key == "from-env" and config.headers == {"Authorization": "Bearer from-env"}
    assert "from-env" not in repr(config) and "from-file" not in repr(config)
    dumped = settings.model_dump_json()
    assert "from-env" not in dumped and "from-file" not in dumped  # only the file's path is a setting
    monkeypatch.delenv("TOKENDIAL_API_KEY")
    key_file.write_text("\n")
    with pytest.raises(ModelLoadError, match="is empty"):
        read_api_key(settings)
    key_file.unlink()
    with pytest.raises(ModelLoadError, match="cannot read the API key file"):
        read_api_key(settings)


def test_generate_says_when_the_server_is_not_running(tmp_path: Path) -> None:
    port = free_port()
    settings = load_settings(
        {"backend": "llama-server", "server_url": f"http://127.0.0.1:{port}"}, tmp_path / "x.toml"
    ).settings
    out, err = io.StringIO(), io.StringIO()
    assert run_generate(settings, "Hello", False, stdout=out, stderr=err) == EXIT_FAILED
    assert f"cannot use the llama-server backend: cannot reach the server at http://127.0.0.1:{port}" in (
        err.getvalue()
    )
    assert "Traceback" not in err.getvalue() and out.getvalue() == ""


def test_the_apps_engine_factory_connects_afresh_each_load(tmp_path: Path) -> None:
    """A retry after "server not running" is another call of the same factory."""
    port = free_port()
    local = load_settings({}, tmp_path / "x.toml").settings
    assert engine_factory_for(local) is None  # the app keeps its local engine
    remote = load_settings(
        {"backend": "llama-server", "server_url": f"http://127.0.0.1:{port}"}, tmp_path / "x.toml"
    ).settings
    factory = engine_factory_for(remote)
    assert factory is not None
    for _ in range(2):
        with pytest.raises(ModelLoadError, match="cannot reach the server"):
            factory(LoadConfig(model_path=tmp_path / "unused.gguf", top_n=3))
