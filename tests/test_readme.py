"""The README stays true: its config reference table and its example config file."""

from __future__ import annotations

import re
from pathlib import Path

from settings import load_settings
from settings.config import reference_table

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_config_reference_matches_the_settings() -> None:
    assert reference_table() in README, (
        "README's config reference is stale: paste settings.config.reference_table()"
    )


def test_example_config_file_loads(tmp_path: Path) -> None:
    examples = re.findall(r"```toml\n(.*?)```", README, flags=re.S)
    [example] = [e for e in examples if "n_ctx" in e]  # the configuration section's example
    others = [e for e in examples if e is not example]
    for i, other in enumerate(others):  # every other TOML example is a valid config file too
        other_path = tmp_path / f"other-{i}.toml"
        other_path.write_text(other, encoding="utf-8")
        assert load_settings({}, other_path).warnings == ()
    path = tmp_path / "config.toml"
    path.write_text(example, encoding="utf-8")
    loaded = load_settings({}, path)
    assert loaded.warnings == ()
    settings = loaded.settings
    assert settings.n_ctx == 4096
    assert settings.sampling.stop == ("\n\nUser:",)
    assert settings.presets["code"].temperature == 0.2
    assert settings.presets["creative"].temperature == 1.4


def test_readme_has_the_test_command_ci_runs() -> None:
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    [command] = re.findall(r'^TEST_COMMAND="(.*)"$', ci, flags=re.M)
    assert f"&& {command}\n" in README
