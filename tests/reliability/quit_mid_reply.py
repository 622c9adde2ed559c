"""Run the app headless on a real model, start a long reply and quit in the middle of it.

Used by test_stress (as a subprocess, so that a crash at exit shows as its exit status):
``python quit_mid_reply.py MODEL DATA_DIR``. Prints how many tokens had streamed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from settings.config import Settings
from settings.sampling import SamplingParams
from tui.app import TokendialApp


async def main(model: Path, data_dir: Path) -> None:
    """Quit while the engine thread is decoding."""
    settings = Settings(
        model_path=model, data_dir=data_dir, n_ctx=512, sampling=SamplingParams(max_new_tokens=2000, seed=1)
    )
    app = TokendialApp(settings, config_path=data_dir / "config.toml")
    async with app.run_test(size=(100, 30)) as pilot:
        while app.model_state.value != "ready":
            await pilot.pause(0.01)
        app.prompt.text = "Tell me a very long story about the sea."
        await pilot.press("enter")
        while not app.records or len(app.records[1].events) < 5:
            await pilot.pause(0.01)
        app.exit()
    print("streamed", len(app.records[1].events))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
