"""Every out-of-range sampler value gets one clear line from a flag, the environment and the config
file (its source, the value, the allowed range), and an inline message in the panel (not applied)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import annotated_types
import pytest
from pydantic.fields import FieldInfo
from textual.app import App, ComposeResult

from settings import ConfigError, load_settings
from settings.sampling import DEFAULT_PRESETS, SamplingParams
from tui.cli import parse_command_line
from tui.widgets.sampling_panel import NUMERIC_FIELDS, SamplingPanel, StepInput

TCSS = Path(__file__).resolve().parents[2] / "tui" / "app.tcss"


def out_of_range(field: FieldInfo) -> float | None:
    """A value just past the field's upper bound (or below its lower one)."""
    for meta in field.metadata:
        if isinstance(meta, annotated_types.Le):
            return float(meta.le) + 1  # type: ignore[arg-type]
    for meta in field.metadata:
        if isinstance(meta, annotated_types.Ge):
            return float(meta.ge) - 1  # type: ignore[arg-type]
        if isinstance(meta, annotated_types.Gt):
            return float(meta.gt) - 1  # type: ignore[arg-type]
    return None


BOUNDED = {
    name: value
    for name, field in SamplingParams.model_fields.items()
    if (value := out_of_range(field)) is not None
}


def shown(name: str, value: float) -> str:
    integer = SamplingParams.model_fields[name].annotation is int
    return str(int(value)) if integer else str(value)


def one_line(tmp_path: Path, argv: list[str], toml: str = "") -> str:
    config = tmp_path / "config.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(parse_command_line(argv), config)
    assert len(caught.value.lines) == 1, caught.value.lines
    return caught.value.lines[0]


def test_every_numeric_sampler_is_bounded() -> None:
    assert len(BOUNDED) >= 22 and {spec.name for spec in NUMERIC_FIELDS} <= set(BOUNDED)


@pytest.mark.parametrize("name", sorted(BOUNDED))
@pytest.mark.parametrize("source", ["flag", "env", "toml"])
def test_out_of_range_from_each_source(
    name: str, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = shown(name, BOUNDED[name])
    argv: list[str] = []
    toml = ""
    if source == "flag":
        argv = [f"--sampling.{name.replace('_', '-')}", value]
        where = f"(from flag --sampling.{name.replace('_', '-')})"
    elif source == "env":
        monkeypatch.setenv(f"TOKENDIAL_SAMPLING__{name.upper()}", value)
        where = f"(from env TOKENDIAL_SAMPLING__{name.upper()})"
    else:
        toml = f"[sampling]\n{name} = {value}\n"
        where = "(from config file "
    line = one_line(tmp_path, argv, toml)
    assert line.startswith(f"bad setting sampling.{name} = {value} {where}"), line
    assert "; allowed: " in line and f" {name} " in line.split("; allowed: ")[1], line


@pytest.mark.parametrize(
    ("bias", "says"),
    [
        (
            '{"abc": 1}',
            "bad setting sampling.logit_bias.abc = abc (from {}): Input should be a valid integer",
        ),
        (
            '{"5": "lots"}',
            "bad setting sampling.logit_bias.5 = lots (from {}): Input should be a valid number",
        ),
        (
            '{"5": 1000}',
            "(from {}): bias 1000.0 for token 5: give a number from -100 to 100, or -inf to ban it",
        ),
        ('{"-3": 1}', "(from {}): token id -3 is negative: token ids start at 0"),
    ],
)
def test_bad_biases_from_each_source(
    bias: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = one_line(tmp_path, ["--sampling.logit-bias", bias])
    assert says.format("flag --sampling.logit-bias") in flag, flag
    monkeypatch.setenv("TOKENDIAL_SAMPLING__LOGIT_BIAS", bias)
    env = one_line(tmp_path, [])
    assert says.format("env TOKENDIAL_SAMPLING__LOGIT_BIAS") in env, env
    monkeypatch.delenv("TOKENDIAL_SAMPLING__LOGIT_BIAS")
    key, _, value = bias.strip("{}").partition(": ")
    toml = one_line(tmp_path, [], f"[sampling.logit_bias]\n{key} = {value}\n")
    assert says.format(f"config file {tmp_path / 'config.toml'}") in toml, toml


class PanelHost(App[None]):
    CSS_PATH = str(TCSS)

    def compose(self) -> ComposeResult:
        yield SamplingPanel(SamplingParams(), dict(DEFAULT_PRESETS), SamplingParams(), id="sampling")


def test_the_panel_refuses_every_out_of_range_value_inline() -> None:
    async def main() -> None:
        app = PanelHost()
        async with app.run_test(size=(80, 24)) as pilot:
            panel = app.query_one(SamplingPanel)
            before = panel.params
            for spec in NUMERIC_FIELDS:
                field = panel.query_one(f"#field-{spec.name}", StepInput)
                field.value = shown(spec.name, BOUNDED[spec.name])
                await pilot.pause()
                panel.commit_field(field)
                assert panel.errors[spec.name] == f"{spec.label} must be {spec.allowed}", spec.name
                shown_error = str(panel.query_one(f"#error-{spec.name}").render())
                assert "(not applied)" in shown_error and panel.params == before, spec.name
                field.value = "" if spec.kind is float else "1.5"
                await pilot.pause()
                assert "must be" in panel.errors[spec.name]
                field.value = str(getattr(before, spec.name))
                panel.commit_field(field)
                assert spec.name not in panel.errors
            bias = panel.query_one("#field-logit_bias")
            refused = [
                ("5=1000", "give a number from -100 to 100"),
                ("-3=1", "is negative"),
                ("5=lots", "'lots' is not a bias"),
                ("x=1", "'x' is not a token id"),
            ]
            for text, says in refused:
                bias.value = text  # type: ignore[attr-defined]
                await pilot.pause()
                assert says in panel.errors["logit_bias"], text
            assert panel.params == before and not math.isnan(panel.params.top_p)

    asyncio.run(main())
