"""DRY sequence breakers from every source: a JSON list (so a comma can be a breaker), or one breaker
given plainly; a plain text with a comma in it is refused with one clear line naming its source."""

from __future__ import annotations

from pathlib import Path

import pytest

from settings import ConfigError, load_settings
from settings.sampling import SamplingParams, breakers_from_text, replace_params
from tui.cli import EXIT_CONFIG, main, parse_command_line

JSON_LIST = '["\\n", ":", ",", "\\"", " of"]'
WANTED = ("\n", ":", ",", '"', " of")
ENV = "TOKENDIAL_SAMPLING__DRY_SEQUENCE_BREAKERS"


def from_sources(tmp_path: Path, argv: list[str], toml: str = "") -> tuple[str, ...]:
    config = tmp_path / "config.toml"
    config.write_text(toml)
    return load_settings(parse_command_line(argv), config).settings.sampling.dry_sequence_breakers


def refusal(tmp_path: Path, argv: list[str], toml: str = "") -> str:
    with pytest.raises(ConfigError) as caught:
        from_sources(tmp_path, argv, toml)
    assert len(caught.value.lines) == 1
    return caught.value.lines[0]


def test_the_text_forms() -> None:
    assert breakers_from_text(JSON_LIST) == WANTED
    assert breakers_from_text(":") == (":",)
    assert breakers_from_text(",") == (",",)
    assert breakers_from_text(" ## ") == (" ## ",)  # as it is: spaces kept
    assert breakers_from_text("") == ()
    refused = [
        ("a,b", "one breaker or several"),
        ('"a", "b"', "one breaker or several"),
        ('["a", 1]', "JSON list of strings"),
        ('["a"', "not a valid JSON list"),
    ]
    for bad, words in refused:
        with pytest.raises(ValueError, match=words):
            breakers_from_text(bad)
    with pytest.raises(ValueError, match="must not be empty"):
        replace_params(SamplingParams(), dry_sequence_breakers='["a", ""]')


def test_flag(tmp_path: Path) -> None:
    assert from_sources(tmp_path, ["--sampling.dry-sequence-breakers", JSON_LIST]) == WANTED
    assert from_sources(tmp_path, [f"--sampling.dry-sequence-breakers={JSON_LIST}"]) == WANTED
    assert from_sources(tmp_path, ["--sampling.dry-sequence-breakers", ","]) == (",",)
    assert from_sources(tmp_path, ["--sampling.dry-sequence-breakers", " :"]) == (" :",)
    repeated = ["--sampling.dry-sequence-breakers", "##", "--sampling.dry-sequence-breakers", '[",", ";"]']
    assert from_sources(tmp_path, repeated) == ("##", ",", ";")
    line = refusal(tmp_path, ["--sampling.dry-sequence-breakers", "\\n,:"])
    assert "(from flag --sampling.dry-sequence-breakers)" in line and "give a json list" in line.lower()


def test_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, JSON_LIST)
    assert from_sources(tmp_path, []) == WANTED
    monkeypatch.setenv(ENV, ":")
    assert from_sources(tmp_path, []) == (":",)
    monkeypatch.setenv(ENV, "a,b")
    line = refusal(tmp_path, [])
    assert f"(from env {ENV})" in line and "one breaker or several" in line
    monkeypatch.setenv(ENV, '["a", ""]')
    assert "must not be empty" in refusal(tmp_path, [])


def test_toml(tmp_path: Path) -> None:
    native = '[sampling]\ndry_sequence_breakers = ["\\n", ":", ",", "\\"", " of"]\n'
    assert from_sources(tmp_path, [], native) == WANTED
    as_text = f"[sampling]\ndry_sequence_breakers = '{JSON_LIST}'\n"
    assert from_sources(tmp_path, [], as_text) == WANTED
    assert from_sources(tmp_path, [], "[sampling]\ndry_sequence_breakers = '*'\n") == ("*",)
    line = refusal(tmp_path, [], "[sampling]\ndry_sequence_breakers = 'a,b'\n")
    assert "(from config file" in line and "one breaker or several" in line
    # the flag wins over the file
    assert from_sources(tmp_path, ["--sampling.dry-sequence-breakers", "[]"], native) == ()


def test_a_bad_flag_stops_generate_with_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["generate", "hi", "--config", str(tmp_path / "none.toml"), "--sampling.dry-sequence-breakers", "a,b"]
    )
    assert code == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "bad setting sampling.dry_sequence_breakers = a,b" in err and "Traceback" not in err
