"""Matrix row 2, settings: every bad value from every source (flag, env, TOML) through the real
command line; TOML syntax errors, unknown keys (a warning), a config file that can't be written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fakes import FakeEngine
from tests.reliability.reliability_support import SIZE, make_app, record_notifications, wait_ready
from tui.cli import main

# (dotted field, a bad value as typed on a command line / in an env var, the same in TOML)
BAD_VALUES: list[tuple[str, str, str]] = [
    ("n_ctx", "1000", "1000"),
    ("n_ctx", "big", '"big"'),
    ("n_gpu_layers", "-2", "-2"),
    ("n_threads", "0", "0"),
    ("top_n", "101", "101"),
    ("theme", "", '""'),
    ("sampling.temperature", "-0.5", "-0.5"),
    ("sampling.temperature", "hot", '"hot"'),
    ("sampling.top_k", "1001", "1001"),
    ("sampling.top_p", "1.5", "1.5"),
    ("sampling.min_p", "2", "2"),
    ("sampling.repeat_penalty", "0", "0"),
    ("sampling.repeat_last_n", "-1", "-1"),
    ("sampling.max_new_tokens", "0", "0"),
    ("sampling.seed", "-7", "-7"),
    ("sampling.mode", "wild", '"wild"'),
]
SOURCES = ("flag", "env", "toml")


def toml_text(dotted: str, value: str) -> str:
    """A TOML document setting ``dotted`` to ``value`` (a TOML literal)."""
    if "." in dotted:
        table, key = dotted.split(".")
        return f"[{table}]\n{key} = {value}\n"
    return f"{dotted} = {value}\n"


def run_cli(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`tokendial ARGV` in this process: (exit code, stdout, stderr)."""
    code = main(argv)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    ("dotted", "typed", "toml_value"), BAD_VALUES, ids=[f"{d}={t}" for d, t, _ in BAD_VALUES]
)
def test_bad_value_from_each_source(
    dotted: str,
    typed: str,
    toml_value: str,
    source: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "config.toml"
    argv = ["--config", str(config)]
    if source == "flag":
        argv += ["--" + dotted.replace("_", "-"), typed]
        where = "flag --" + dotted.replace("_", "-")
    elif source == "env":
        name = "TOKENDIAL_" + dotted.replace(".", "__").upper()
        monkeypatch.setenv(name, typed)
        where = "env " + name
    else:
        config.write_text(toml_text(dotted, toml_value))
        where = f"config file {config}"
    code, out, err = run_cli([*argv, "generate", "hello"], capfd)
    assert code == 2, err
    assert out == ""
    [line] = err.strip().splitlines()
    assert line.startswith(f"tokendial: bad setting {dotted} = ")
    assert f"(from {where})" in line


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ('theme = "nord"\nn_ctx = \n', "invalid TOML"),
        ("[sampling\ntemperature = 1\n", "invalid TOML"),
        ('theme = "nord"\ntheme = "dark"\n', "invalid TOML"),
        ("sampling = 3\n", "bad setting sampling = 3"),
        ("[presets.mine]\ntemperature = 9\n", "bad setting presets.mine.temperature = 9"),
        ('sampling = { stop = [""] }\n', "stop strings must not be empty"),
    ],
    ids=["missing value", "unclosed table", "duplicate key", "table as number", "bad preset", "empty stop"],
)
def test_broken_config_file(
    text: str, phrase: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text)
    code, _out, err = run_cli(["--config", str(config), "generate", "hello"], capfd)
    assert code == 2
    assert phrase in err
    assert str(config) in err
    assert len(err.strip().splitlines()) == 1


def test_config_file_not_utf8(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(b'theme = "nord"\n# caf\xe9 in Latin-1\n')
    code, _, err = run_cli(["--config", str(config), "generate", "hello"], capfd)
    assert code == 2
    assert f"config file {config}" in err and "UTF-8" in err


def test_config_path_is_a_directory(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["--config", str(tmp_path), "generate", "hello"], capfd)
    assert code == 2
    assert f"config file {tmp_path}: cannot read" in err


def test_env_value_not_json(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TOKENDIAL_SAMPLING", "{temperature: 0.5")
    code, _, err = run_cli(["generate", "hello"], capfd)
    assert code == 2
    [line] = err.strip().splitlines()
    assert "TOKENDIAL_SAMPLING" in line and "JSON" in line
    assert "command line" not in line


def _empty_prompt_run(argv: list[str], tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run up to the point where settings are used (an existing model file, an empty prompt: exit 2)."""
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    code, _, err = run_cli([*argv, "--model-path", str(model), "generate", "   "], capfd)
    return code, err


def test_unknown_toml_keys_warn_and_the_rest_applies(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("temprature = 0.5\n[sampling]\ntop_q = 0.9\n[colours]\nx = 1\n")
    code, err = _empty_prompt_run(["--config", str(config)], tmp_path, capfd)
    assert code == 2 and "the prompt is empty" in err  # it went on past the settings
    for key in ("temprature", "sampling.top_q", "colours"):
        assert f"warning: config file {config}: unknown key '{key}' ignored" in err


def test_unknown_env_setting_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOKENDIAL_TEMPRATURE", "0.5")
    monkeypatch.setenv("TOKENDIAL_DEBUG", "")  # a tokendial variable, not a setting: no warning
    code, err = _empty_prompt_run([], tmp_path, capfd)
    assert code == 2 and "the prompt is empty" in err
    assert "TOKENDIAL_TEMPRATURE" in err and "not a tokendial setting" in err
    assert "TOKENDIAL_DEBUG" not in err


def test_unknown_flag_is_a_usage_error(capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["generate", "hello", "--temprature", "0.5"], capfd)
    assert code == 2
    assert "unrecognized arguments: --temprature" in err
    # Before the subcommand, argparse takes the value for the subcommand: still exit 2, a usage line.
    code, _, err = run_cli(["--temprature", "0.5", "generate", "hello"], capfd)
    assert code == 2
    assert err.startswith("usage: tokendial")


# -- saving the default sampling parameters from the app ----------------------------------


def _unwritable_config(kind: str, tmp_path: Path) -> Path:
    if kind == "folder is a file":
        (tmp_path / "blocker").write_text("x")
        return tmp_path / "blocker" / "config.toml"
    if kind == "path is a folder":
        (tmp_path / "config.toml").mkdir()
        return tmp_path / "config.toml"
    if kind == "invalid TOML kept":
        path = tmp_path / "config.toml"
        path.write_text("theme = \n")
        return path
    # a place no one may create files in (as root, read-only permission bits don't stop writes)
    if os.geteuid() == 0:
        return Path("/proc/tokendial/config.toml")
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o500)
    return folder / "config.toml"


@pytest.mark.parametrize(
    "kind", ["folder is a file", "path is a folder", "invalid TOML kept", "read-only place"]
)
async def test_save_default_failure_is_a_clear_notification(kind: str, tmp_path: Path) -> None:
    config = _unwritable_config(kind, tmp_path)
    before = config.read_bytes() if config.is_file() else None
    app = make_app(FakeEngine(), tmp_path)
    app.config_path = config
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        defaults = app.panel.defaults
        app.panel.toggle_greedy()
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        errors = [n for n in app._notifications if n.severity == "error"]
        assert errors, "no error notification"
        assert str(config) in errors[-1].message
        assert errors[-1].title == "Not saved"
        assert app.panel.defaults == defaults
        assert app.is_running
    if before is not None:
        assert config.read_bytes() == before  # the user's file is left as it was
    if config.parent.is_dir():
        assert not [p for p in config.parent.iterdir() if p.name.endswith(".tmp")]


async def test_unknown_theme_is_a_warning_in_the_app(tmp_path: Path) -> None:
    """Themes are Textual's (settings can't list them): the app says so and keeps its default."""
    app = make_app(FakeEngine(), tmp_path)
    app.settings = app.settings.model_copy(update={"theme": "drakula"})
    notices = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        assert app.theme == "textual-dark"
        assert any("Unknown theme 'drakula'" in n and "dracula" in n for n in notices), notices
