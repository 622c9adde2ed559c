"""In the app: a model without a chat template gets a notice and completion mode; f8 switches."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from settings.config import Settings
from tests.fakes import FakeEngine
from tui.app import TokendialApp
from tui.core.state import ModelState
from tui.engine.events import ModelInfo


async def test_no_template_notice_completion_mode_and_the_switch(tmp_path: Path) -> None:
    class BaseModelFake(FakeEngine):
        @property
        def info(self) -> ModelInfo:
            return dataclasses.replace(super().info, has_chat_template=False)

    fake = BaseModelFake()
    settings = Settings(model_path=tmp_path / "base.gguf", data_dir=tmp_path / "data")
    app = TokendialApp(settings, engine_factory=lambda config: fake, config_path=tmp_path / "c.toml")
    async with app.run_test(size=(140, 40)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.model.state is ModelState.READY:
                break
        await pilot.pause(0.1)
        notice = app.query_one("#template-notice")
        assert "has no chat template" in str(notice.render())
        assert app.replies.modes.raw
        await pilot.press("f8")
        await pilot.pause(0.1)
        assert not app.replies.modes.raw
        await pilot.press("f8")
        await pilot.pause(0.1)
        assert app.replies.modes.raw
        await app.replies.send_prompt("My favourite dessert is a piece of")
        for _ in range(100):
            await pilot.pause(0.05)
            if not app.replies.busy:
                break
        assert fake.raw_calls[-1] is True
