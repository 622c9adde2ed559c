"""The panel knows the loaded model: token texts in the bias list from the start, its vocabulary's
size, and what it can't use in the configured parameters (said at load, before any reply)."""

from __future__ import annotations

import math
from pathlib import Path

from textual.widgets import Input

from settings import load_settings
from tests.fakes import FAKE_VOCAB, FakeEngine
from tests.tui.tui_app_helpers import SIZE, wait_for, wait_ready
from tui.app import TokendialApp
from tui.cli import parse_command_line
from tui.engine.protocol import ChatEngine, LoadConfig


def app_for(engines: list[FakeEngine], tmp_path: Path, toml: str, argv: list[str]) -> TokendialApp:
    """The app on settings read as the CLI does (flags > TOML); each load takes the next engine."""
    config = tmp_path / "config.toml"
    config.write_text(f'model_path = "{tmp_path / "FakeLM.gguf"}"\ndata_dir = "{tmp_path / "data"}"\n{toml}')
    settings = load_settings(parse_command_line(argv), config).settings
    queue = list(engines)

    def factory(_: LoadConfig) -> ChatEngine:
        return queue.pop(0)

    return TokendialApp(settings, engine_factory=factory, config_path=config)


def bias_list(app: TokendialApp) -> str:
    return str(app.views.panel.query_one("#bias-list").render())


async def test_biases_from_toml_and_flags_show_token_text_right_after_start(tmp_path: Path) -> None:
    engine = FakeEngine()
    hello, world = engine.token_id("Hello"), engine.token_id(" world")
    app = app_for(
        [engine], tmp_path, f'[sampling.logit_bias]\n{hello} = "-inf"\n',
        ["--sampling.logit-bias", f'{{"{world}": 2.5, "{hello}": "-inf"}}'],
    )  # fmt: skip
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.pause()
        listing = bias_list(app)
        assert f"{hello} Hello banned" in listing, listing
        assert f"{world}  world +2.5" in listing, listing
        assert app.views.panel.n_vocab == FAKE_VOCAB


async def test_a_model_switch_shows_the_new_models_texts(tmp_path: Path) -> None:
    first, second = FakeEngine(), FakeEngine()
    token = first.token_id("Hello")
    assert second.token_id("Bonjour") == token  # the same id is another text in the second model
    app = app_for([first, second], tmp_path, f"[sampling.logit_bias]\n{token} = 1.5\n", [])
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.pause()
        assert f"{token} Hello +1.5" in bias_list(app)
        other = tmp_path / "Other.gguf"
        other.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + bytes(16))  # passes the quick check
        assert await app.models.switch_model(other)
        ready = lambda: app.model.engine is second and app.model_state.value == "ready"  # noqa: E731
        await wait_for(pilot, ready, "the second model")
        await pilot.pause()
        assert f"{token} Bonjour +1.5" in bias_list(app), bias_list(app)
        assert first.closed


async def test_a_bias_outside_the_vocabulary_is_said_at_load_and_refused_in_the_panel(tmp_path: Path) -> None:
    outside = FAKE_VOCAB + 7
    app = app_for([FakeEngine()], tmp_path, f"[sampling.logit_bias]\n{outside} = -5\n", [])
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.pause()
        panel = app.views.panel
        assert f"{outside} not in this model's vocabulary" in bias_list(app)
        assert f"vocabulary has {FAKE_VOCAB} tokens" in panel.errors["logit_bias"]
        said = [str(n.message) for n in app._notifications]
        assert any(f"The logit bias names token {outside}" in m for m in said), said
        field = panel.query_one("#field-logit_bias", Input)
        panel.query_one("#section-constraints").collapsed = False  # type: ignore[attr-defined]
        await pilot.pause()
        field.focus()
        field.value = f"5=-inf, {FAKE_VOCAB}=1"
        await pilot.press("enter")
        await pilot.pause()
        assert f"token {FAKE_VOCAB}, but this model's vocabulary" in panel.errors["logit_bias"]
        assert app.conversation.live.params.logit_bias == {outside: -5.0}  # nothing applied
        field.value = "5=-inf"
        await pilot.press("enter")
        await pilot.pause()
        assert app.conversation.live.params.logit_bias == {5: -math.inf}
        assert "logit_bias" not in panel.errors
