"""Child process for the app SIGKILL test: the real TokendialApp (FakeEngine), driven by Pilot.

Usage: python sigkill_app.py DATA_DIR
Sends two prompts and waits for their replies, then sends a third whose reply is held mid-way
(FakeEngine.hold_at) after a partial save, prints READY and waits to be killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from settings.config import Settings
from settings.sampling import SamplingParams
from tests.fakes import FakeEngine
from tui.app import TokendialApp
from tui.engine.protocol import ChatEngine, LoadConfig


async def main(data_dir: Path) -> None:
    engine = FakeEngine()

    def factory(config: LoadConfig) -> ChatEngine:
        return engine

    settings = Settings(
        model_path=data_dir.parent / "FakeLM.gguf", data_dir=data_dir, sampling=SamplingParams(top_k=11)
    )
    app = TokendialApp(settings, engine_factory=factory, config_path=data_dir.parent / "config.toml")
    app.chat_session.partial_every_s = 0.0  # save the partial text at every batch
    async with app.run_test(size=(120, 40)) as pilot:
        while app.model_state.value != "ready":
            await pilot.pause(0.01)
        for n, prompt in enumerate(("first prompt", "second prompt", "third prompt")):
            if n == 2:
                engine.hold_at = 4
                engine.delay_s = 0.05  # slower than the worker's batching: every token reaches the UI
            app.prompt.text = prompt
            app.prompt.focus()
            await pilot.press("enter")
            if n < 2:
                while app.busy or not all(r.finished for r in app.records.values()):
                    await pilot.pause(0.01)
                print(f"FINISHED {prompt}", flush=True)
        while not engine.reached_hold.is_set():
            await pilot.pause(0.01)
        record = app.records[max(app.records)]
        while len(record.events) < 4:  # the UI has shown (and autosaved) the tokens before the hold
            await pilot.pause(0.01)
        print("READY", flush=True)
        while True:
            await pilot.pause(1)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
