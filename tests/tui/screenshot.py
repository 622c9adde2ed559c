"""Make the README screenshot: the real app on the real model, a reply in the token view, the inspector open.

Run from the repo root: ``python tests/tui/screenshot.py [MODEL.gguf]`` (writes tui/docs/screenshot.svg).
Not a test: the reply is sampled, so the picture changes from run to run.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2]))  # the repo root: tests.tui.tui_app_helpers

from settings.config import Settings
from settings.sampling import SamplingParams
from tests.tui.tui_app_helpers import reply_done, send, wait_for
from tui.app import TokendialApp
from tui.widgets.sampling_panel import StepInput
from tui.widgets.status_bar import ModelState

ROOT = Path(__file__).parents[2]
OUT = ROOT / "tui" / "docs" / "screenshot.svg"


async def main(model: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            model_path=model,
            data_dir=Path(tmp) / "data",
            n_ctx=1024,
            sampling=SamplingParams(temperature=0.7, max_new_tokens=48, seed=11),
        )
        app = TokendialApp(settings, config_path=Path(tmp) / "config.toml")
        async with app.run_test(size=(160, 44)) as pilot:
            await wait_for(pilot, lambda: app.model_state is ModelState.READY, "model loaded", 3000)
            await send(pilot, "Give me three tips for writing clear code.")
            await wait_for(pilot, lambda: len(app.records[1].events) >= 12, "first tokens", 3000)
            app.panel.query_one("#field-temperature", StepInput).focus()
            await pilot.press("pageup")  # temperature up mid-reply: the token view marks it
            await wait_for(pilot, lambda: not app.busy, "reply finished", 3000)
            await reply_done(pilot)
            await pilot.press("ctrl+t")
            app.token_view.focus()
            await pilot.pause()
            await pilot.press("u", "i")
            await pilot.pause(0.5)
            app.save_screenshot(filename=OUT.name, path=str(OUT.parent))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    default = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else default))
