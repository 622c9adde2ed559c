"""Every new sampler parameter flows through TOML, env, flags, presets, the chat store and exports."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from settings import load_settings, save_default_sampling
from settings.sampling import (
    DEFAULT_SAMPLER_ORDER,
    Mirostat,
    SamplerName,
    SamplingParams,
    replace_params,
    with_bias,
)
from tui.cli import parse_command_line
from tui.store.export import chat_to_export, parse_export
from tui.store.store import ChatStore

EVERYTHING = SamplingParams(
    typical_p=0.9,
    top_n_sigma=1.5,
    xtc_probability=0.3,
    xtc_threshold=0.2,
    presence_penalty=0.4,
    frequency_penalty=-0.2,
    dry_multiplier=0.8,
    dry_base=2.0,
    dry_allowed_length=3,
    dry_last_n=256,
    dry_sequence_breakers=("\n", "##"),
    mirostat=Mirostat.V2,
    mirostat_tau=4.0,
    mirostat_eta=0.2,
    dynatemp_range=0.4,
    dynatemp_exponent=1.5,
    logit_bias={198: -math.inf, 13: 2.5},
    grammar='root ::= "yes" | "no"',
    samplers="top_k;temperature;penalties",
)


def test_defaults_are_off_and_the_order_is_llama_cpps() -> None:
    params = SamplingParams()
    assert [s.value for s in params.samplers] == [
        "penalties", "dry", "top_n_sigma", "top_k", "typ_p", "top_p", "min_p", "xtc", "temperature",
    ]  # fmt: skip
    assert params.samplers == DEFAULT_SAMPLER_ORDER
    assert params.typical_p == 1.0 and params.top_n_sigma == 0.0 and params.xtc_probability == 0.0
    assert params.dry_multiplier == 0.0 and params.mirostat is Mirostat.OFF and not params.logit_bias


def test_every_field_has_a_docstring() -> None:
    for name, field in SamplingParams.model_fields.items():
        assert field.description, name


@pytest.mark.parametrize(
    ("update", "words"),
    [
        ({"typical_p": 0.0}, "greater than 0"),
        ({"xtc_threshold": 0.7}, "less than or equal to 0.5"),
        ({"mirostat": 3}, "mirostat"),
        ({"samplers": "top_k;top_k"}, "appear once"),
        ({"samplers": "top_k;nucleus"}, "samplers"),
        ({"logit_bias": {"-3": 1.0}}, "negative"),
        ({"logit_bias": {"5": 1000}}, "-100 to 100"),
        ({"logit_bias": {"5": "lots"}}, "logit_bias"),
        ({"json_schema": "{nope"}, "not valid JSON"),
        ({"grammar": "root ::= x", "json_schema": "{}"}, "not both"),
        ({"dry_sequence_breakers": ["a", ""]}, "must not be empty"),
    ],
)
def test_bad_values_get_a_clear_message(update: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        replace_params(SamplingParams(), **update)
    assert words in str(caught.value)


def test_store_round_trip(tmp_path: Path) -> None:
    store = ChatStore(tmp_path / "chats.db")
    chat_id = store.create_chat(params=EVERYTHING)
    assert store.load_chat(chat_id).last_params == EVERYTHING
    store.set_last_params(chat_id, SamplingParams(logit_bias={7: -math.inf}))
    assert store.load_chat(chat_id).last_params == SamplingParams(logit_bias={7: -math.inf})


def test_export_round_trip(tmp_path: Path) -> None:
    store = ChatStore(tmp_path / "chats.db")
    chat_id = store.create_chat(params=EVERYTHING)
    exported = chat_to_export(store.load_chat(chat_id), {})
    text = json.dumps(exported, allow_nan=False)  # strict JSON: a ban is the string "-inf"
    assert '"198": "-inf"' in text
    assert parse_export(text).chat.last_params == EVERYTHING


def test_toml_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    save_default_sampling(EVERYTHING, path)
    assert tomllib.loads(path.read_text())["sampling"]["logit_bias"]["198"] == "-inf"
    assert load_settings({}, path).settings.sampling == EVERYTHING


def test_toml_written_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        "[sampling]\n"
        'samplers = "penalties;top_k;temperature"\n'
        'logit_bias = { 198 = "ban", 13 = 1.5 }\n'
        "mirostat = 1\n"
        "[presets.strict]\n"
        "typical_p = 0.5\n"
        'samplers = ["typ_p", "temperature"]\n'
    )
    settings = load_settings({}, path).settings
    assert settings.sampling.samplers == (SamplerName.PENALTIES, SamplerName.TOP_K, SamplerName.TEMPERATURE)
    assert settings.sampling.logit_bias == {198: -math.inf, 13: 1.5}
    assert settings.sampling.mirostat is Mirostat.V1
    assert settings.presets["strict"].samplers == (SamplerName.TYP_P, SamplerName.TEMPERATURE)


def test_env_and_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENDIAL_SAMPLING__TYPICAL_P", "0.7")
    monkeypatch.setenv("TOKENDIAL_SAMPLING__LOGIT_BIAS", '{"198": "-inf"}')
    argv = ["--sampling.samplers", "top_k;temperature", "--sampling.xtc-probability", "0.5"]
    flags = parse_command_line(argv)
    settings = load_settings(flags, tmp_path / "none.toml").settings
    assert settings.sampling.typical_p == 0.7
    assert settings.sampling.logit_bias == {198: -math.inf}
    assert settings.sampling.samplers == (SamplerName.TOP_K, SamplerName.TEMPERATURE)
    assert settings.sampling.xtc_probability == 0.5


def test_bad_flag_names_the_source(tmp_path: Path) -> None:
    from settings import ConfigError

    flags = parse_command_line(["--sampling.samplers", "top_k;warp"])
    with pytest.raises(ConfigError) as caught:
        load_settings(flags, tmp_path / "none.toml")
    assert "flag --sampling.samplers" in str(caught.value)


def test_with_bias_bans_boosts_and_clears() -> None:
    params = with_bias(SamplingParams(), 13, 2.0)
    assert params.logit_bias == {13: 2.0}
    params = with_bias(params, 13, -2.0)
    assert params.logit_bias == {}
    params = with_bias(with_bias(params, 5, -math.inf), 5, 2.0)
    assert params.logit_bias == {5: -math.inf}  # a ban stays until cleared
    assert with_bias(SamplingParams(), 9, 500.0).logit_bias == {9: 100.0}
    with pytest.raises(ValidationError):
        with_bias(SamplingParams(), -1, 1.0)
