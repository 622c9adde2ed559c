"""Settings: source precedence, every validation range, error lines, TOML problems, saving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from settings import (
    DEFAULT_PRESETS,
    ConfigError,
    ConfigWriteError,
    SamplingMode,
    SamplingParams,
    Settings,
    load_settings,
    save_default_sampling,
)
from settings.config import (
    N_CTX_MAX,
    config_path_from_env,
    default_config_path,
    default_models_dir,
    using_config_file,
)
from settings.config import Settings as ConfigSettings
from settings.sampling import SEED_MAX
from tui.cli import main

REPO_MODELS = Path(__file__).resolve().parents[1] / "models"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "config.toml"


# --- defaults and precedence -------------------------------------------------------------------


def test_defaults_without_any_source(config: Path) -> None:
    settings = load_settings({}, config).settings
    assert settings.model_path is None
    assert settings.n_ctx == 2048
    assert settings.n_gpu_layers == 0
    assert settings.n_threads is None
    assert settings.top_n == 10
    assert settings.sampling == SamplingParams()
    assert settings.presets == DEFAULT_PRESETS
    assert settings.models_dir == REPO_MODELS  # running from a checkout that has models/
    assert settings.data_dir.name == "tokendial"


def test_every_field_has_a_docstring() -> None:
    for name, field in {**Settings.model_fields, **SamplingParams.model_fields}.items():
        assert field.description, f"{name} has no docstring"


def test_flag_beats_env_beats_file_beats_default(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(config, "n_ctx = 1024\ntop_n = 7\n[sampling]\ntop_p = 0.5\ntemperature = 0.3\nmin_p = 0.2\n")
    monkeypatch.setenv("TOKENDIAL_N_CTX", "512")
    monkeypatch.setenv("TOKENDIAL_SAMPLING__TOP_P", "0.6")
    monkeypatch.setenv("TOKENDIAL_SAMPLING__TEMPERATURE", "0.4")
    settings = load_settings({"sampling": {"temperature": "0.9"}}, config).settings
    assert settings.sampling.temperature == 0.9  # flag over env over file
    assert settings.sampling.top_p == 0.6  # env over file
    assert settings.sampling.min_p == 0.2  # file over default
    assert settings.sampling.top_k == 40  # default
    assert settings.n_ctx == 512  # env over file
    assert settings.top_n == 7  # file over default
    assert load_settings({"n_ctx": "768"}, config).settings.n_ctx == 768  # flag over env


def test_precedence_through_the_real_command_line(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.cli import parse_command_line

    write(config, "n_ctx = 1024\n")
    monkeypatch.setenv("TOKENDIAL_N_CTX", "512")
    parsed = parse_command_line(["--n-ctx", "256", "--sampling.top-k", "3"])
    settings = load_settings({k: parsed[k] for k in ("n_ctx", "sampling")}, config).settings
    assert (settings.n_ctx, settings.sampling.top_k) == (256, 3)


def test_env_json_value_and_case_insensitive_names(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENDIAL_SAMPLING", '{"top_k": 7, "mode": "greedy"}')
    monkeypatch.setenv("tokendial_top_n", "3")
    settings = load_settings({}, config).settings
    assert settings.sampling.top_k == 7
    assert settings.sampling.mode is SamplingMode.GREEDY
    assert settings.top_n == 3


def test_config_file_from_env_var_and_plain_constructor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    named = write(tmp_path / "other.toml", "theme = 'nord'\n")
    assert config_path_from_env() == default_config_path()
    monkeypatch.setenv("TOKENDIAL_CONFIG", str(named))
    assert config_path_from_env() == named
    assert Settings().theme == "nord"
    assert load_settings().settings.theme == "nord"
    with using_config_file(write(tmp_path / "third.toml", "theme = 'gruvbox'\n")):
        assert ConfigSettings().theme == "gruvbox"


def test_default_config_file_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    path = default_config_path()
    path.parent.mkdir(parents=True)
    write(path, "system_prompt = 'Be brief.'\n")
    assert Settings().system_prompt == "Be brief."


def test_paths_expand_user(config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write(config, 'model_path = "~/m.gguf"\nmodels_dir = "~/models"\ndata_dir = "~/data"\n')
    settings = load_settings({}, config).settings
    assert settings.model_path == tmp_path / "m.gguf"
    assert settings.models_dir == tmp_path / "models"
    assert settings.data_dir == tmp_path / "data"


def test_models_dir_default_is_repo_models_folder() -> None:
    assert default_models_dir() == REPO_MODELS


def test_presets_merge_with_defaults(config: Path) -> None:
    write(config, "[presets.precise]\ntemperature = 0.1\n[presets.mine]\ntop_k = 5\n")
    presets = load_settings({}, config).settings.presets
    assert set(presets) == {*DEFAULT_PRESETS, "mine"}
    assert presets["precise"].temperature == 0.1
    assert presets["precise"].top_k == DEFAULT_PRESETS["precise"].top_k  # rest of the built-in kept
    assert presets["mine"] == SamplingParams(top_k=5)
    assert presets["creative"] == DEFAULT_PRESETS["creative"]


# --- every validation range ---------------------------------------------------------------------

# (dotted field, values that must be accepted, values that must be rejected)
RANGES: list[tuple[str, list[Any], list[Any]]] = [
    ("sampling.temperature", [0, 5.0], [-0.01, 5.01]),
    ("sampling.top_k", [0, 1000], [-1, 1001]),
    ("sampling.top_p", [1e-6, 1.0], [0, 1.0001]),
    ("sampling.min_p", [0, 1.0], [-0.01, 1.01]),
    ("sampling.repeat_penalty", [1e-6, 5.0], [0, 5.01]),
    ("sampling.repeat_last_n", [0, 4096], [-1, 4097]),
    ("sampling.max_new_tokens", [1, 1_000_000], [0, 1_000_001]),
    ("sampling.seed", [-1, SEED_MAX], [-2, SEED_MAX + 1]),
    ("sampling.mode", ["greedy", "sample"], ["random", 3]),
    ("sampling.stop", [["a", "b"], []], [[""]]),
    ("n_ctx", [256, 512, N_CTX_MAX], [0, 255, 300, N_CTX_MAX + 256]),
    ("n_gpu_layers", [-1, 0, 999], [-2, 1000]),
    ("n_threads", [1, 512], [0, 513]),
    ("top_n", [1, 100], [0, 101]),
    ("theme", ["nord"], [""]),
]


def nested(dotted: str, value: Any) -> dict[str, Any]:
    result: Any = value
    for part in reversed(dotted.split(".")):
        result = {part: result}
    return dict(result)


def get_dotted(settings: Settings, dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize(("dotted", "good", "bad"), RANGES, ids=[r[0] for r in RANGES])
def test_validation_range(dotted: str, good: list[Any], bad: list[Any], config: Path) -> None:
    for value in good:
        settings = load_settings(nested(dotted, value), config).settings
        got = get_dotted(settings, dotted)
        assert got == (tuple(value) if isinstance(value, list) else value)
    for value in bad:
        with pytest.raises(ConfigError) as info:
            load_settings(nested(dotted, value), config)
        assert len(info.value.lines) == 1, info.value.lines
        line = info.value.lines[0]
        assert f"bad setting {dotted} = " in line
        assert "(from flag --" + dotted.replace("_", "-") + ")" in line


@pytest.mark.parametrize(("dotted", "good", "bad"), RANGES[:10], ids=[r[0] for r in RANGES[:10]])
def test_sampling_params_ranges_directly(dotted: str, good: list[Any], bad: list[Any]) -> None:
    name = dotted.split(".", 1)[1]
    for value in good:
        SamplingParams.model_validate({name: value})
    for value in bad:
        with pytest.raises(ValidationError):
            SamplingParams.model_validate({name: value})


def test_range_is_named_in_the_line(config: Path) -> None:
    cases = {
        "sampling.top_p": (2, "allowed: a number 0.0 < top_p <= 1.0"),
        "sampling.temperature": (-1, "allowed: a number 0.0 <= temperature <= 5.0"),
        "n_ctx": (300, "allowed: an integer 256 <= n_ctx <= 262144, a multiple of 256"),
        "n_threads": (0, "allowed: an integer 1 <= n_threads <= 512, or unset"),
        "sampling.mode": ("x", "allowed: one of greedy, sample"),
        "top_n": ("many", "allowed: an integer 1 <= top_n <= 100"),
    }
    for dotted, (value, allowed) in cases.items():
        with pytest.raises(ConfigError) as info:
            load_settings(nested(dotted, value), config)
        assert info.value.lines[0].endswith(allowed), info.value.lines


# --- error lines per source ---------------------------------------------------------------------


def test_one_line_per_bad_field_with_its_source(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(config, "n_ctx = 300\n[sampling]\ntop_p = 0\n[presets.mine]\ntop_k = -1\n")
    monkeypatch.setenv("TOKENDIAL_SAMPLING__MIN_P", "2")
    monkeypatch.setenv("TOKENDIAL_N_THREADS", "0")
    with pytest.raises(ConfigError) as info:
        load_settings({"top_n": "101"}, config)
    lines = sorted(info.value.lines)
    assert len(lines) == 6, lines
    expected = {
        "n_ctx = 300 (from config file " + str(config) + ")",
        "n_threads = 0 (from env TOKENDIAL_N_THREADS)",
        "top_n = 101 (from flag --top-n)",
        "sampling.top_p = 0 (from config file " + str(config) + ")",
        "sampling.min_p = 2 (from env TOKENDIAL_SAMPLING__MIN_P)",
        "presets.mine.top_k = -1 (from config file " + str(config) + ")",
    }
    for fragment in expected:
        assert sum(fragment in line for line in lines) == 1, (fragment, lines)


def test_error_names_the_highest_source_that_gave_the_value(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(config, "top_n = 500\n")
    monkeypatch.setenv("TOKENDIAL_TOP_N", "200")
    with pytest.raises(ConfigError) as info:
        load_settings({}, config)
    assert info.value.lines == [
        "bad setting top_n = 200 (from env TOKENDIAL_TOP_N): Input should be less than or equal to 100; "
        "allowed: an integer 1 <= top_n <= 100"
    ]
    # A good flag hides the bad env value.
    assert load_settings({"top_n": "5"}, config).settings.top_n == 5


def test_env_json_error_names_the_variable(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENDIAL_SAMPLING", '{"top_k": -5}')
    with pytest.raises(ConfigError) as info:
        load_settings({}, config)
    assert "(from env TOKENDIAL_SAMPLING)" in info.value.lines[0]


def test_unknown_nested_env_key_is_an_error(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENDIAL_SAMPLING__TOP_Q", "1")
    with pytest.raises(ConfigError) as info:
        load_settings({}, config)
    assert info.value.lines == [
        "bad setting sampling.top_q = 1 (from env TOKENDIAL_SAMPLING__TOP_Q): unknown setting"
    ]


@pytest.mark.parametrize("source", ["flag", "env", "toml"])
def test_exit_code_2_and_one_line_for_each_source(
    source: str, config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--config", str(config), "--help"]
    if source == "flag":
        argv = ["--config", str(config), "--sampling.top-p", "1.5", "fetch"]
    elif source == "env":
        monkeypatch.setenv("TOKENDIAL_SAMPLING__TOP_P", "1.5")
    else:
        write(config, "[sampling]\ntop_p = 1.5\n")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    label = {
        "flag": "flag --sampling.top-p",
        "env": "env TOKENDIAL_SAMPLING__TOP_P",
        "toml": f"config file {config}",
    }[source]
    assert err[0] == (
        f"tokendial: bad setting sampling.top_p = 1.5 (from {label}): "
        "Input should be less than or equal to 1; allowed: a number 0.0 < top_p <= 1.0"
    )


# --- TOML problems ------------------------------------------------------------------------------


def test_toml_syntax_error_names_file_and_line(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(config, "theme = 'nord'\nn_ctx = \n")
    with pytest.raises(ConfigError) as info:
        load_settings({}, config)
    assert len(info.value.lines) == 1
    assert str(config) in info.value.lines[0]
    assert "line 2" in info.value.lines[0]
    assert main(["--config", str(config), "fetch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"tokendial: {info.value.lines[0]}"]


def test_unknown_keys_warn_and_are_ignored(config: Path) -> None:
    write(
        config, "colour = 'red'\nn_ctx = 512\n[sampling]\ntop_q = 1\ntop_k = 3\n[presets.mine]\nbogus = 1\n"
    )
    loaded = load_settings({}, config)
    assert loaded.settings.n_ctx == 512
    assert loaded.settings.sampling.top_k == 3
    assert loaded.settings.presets["mine"] == SamplingParams()
    assert loaded.warnings == (
        f"warning: config file {config}: unknown key 'colour' ignored",
        f"warning: config file {config}: unknown key 'sampling.top_q' ignored",
        f"warning: config file {config}: unknown key 'presets.mine.bogus' ignored",
    )


def test_missing_config_file_is_fine(tmp_path: Path) -> None:
    assert load_settings({}, tmp_path / "nope.toml").settings.n_ctx == 2048


# --- saving the default sampling ----------------------------------------------------------------


def test_save_default_sampling_round_trips_and_keeps_other_keys(config: Path) -> None:
    write(config, "n_ctx = 512\n[sampling]\ntop_k = 3\n")
    params = SamplingParams(mode=SamplingMode.GREEDY, temperature=0.2, stop=("###", "\n\n"), seed=42)
    assert save_default_sampling(params, config) == config
    settings = load_settings({}, config).settings
    assert settings.sampling == params
    assert settings.n_ctx == 512
    assert not [p for p in config.parent.iterdir() if p.name != config.name]  # no temp file left


def test_save_default_sampling_creates_the_default_file() -> None:
    path = save_default_sampling(SamplingParams(top_k=9))
    assert path == default_config_path()
    assert Settings().sampling.top_k == 9


def test_save_default_sampling_bad_folder(tmp_path: Path) -> None:
    blocker = write(tmp_path / "a-file", "")
    with pytest.raises(ConfigWriteError, match=r"config file .*a-file/config.toml: Not a directory"):
        save_default_sampling(SamplingParams(), blocker / "config.toml")


def test_save_default_sampling_unwritable(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(config, "n_ctx = 512\n")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("settings.config.tempfile.mkstemp", refuse)
    with pytest.raises(ConfigWriteError) as info:
        save_default_sampling(SamplingParams(), config)
    assert str(info.value) == f"cannot write config file {config}: Permission denied"
    assert config.read_text() == "n_ctx = 512\n"


def test_save_default_sampling_refuses_to_clobber_invalid_toml(config: Path) -> None:
    write(config, "n_ctx = = 3\n")
    with pytest.raises(ConfigWriteError, match="invalid TOML"):
        save_default_sampling(SamplingParams(), config)
    assert config.read_text() == "n_ctx = = 3\n"
