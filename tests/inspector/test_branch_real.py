"""Real model: branch from an earlier reply (later turns dropped), then reopen the chat with its branches."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from settings.config import Settings
from settings.sampling import SamplingMode, SamplingParams
from tests.inspector.inspector_helpers import SIZE, wait_for
from tui.app import TokendialApp
from tui.widgets.chat_view import AssistantMessage

pytestmark = pytest.mark.real_model


async def _wait(pilot: Pilot[int], app: TokendialApp, what: str) -> None:
    await wait_for(pilot, lambda: not app.busy and all(r.finished for r in app.records.values()), what, 6000)
    await pilot.pause()


async def _ask(pilot: Pilot[int], app: TokendialApp, prompt: str) -> None:
    app.prompt.text = prompt
    app.prompt.focus()
    await pilot.press("enter")
    await _wait(pilot, app, prompt)


async def test_branch_an_earlier_reply_then_reopen_it(tmp_path: Path, model_path: Path) -> None:
    greedy = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0, max_new_tokens=10)
    settings = Settings(model_path=model_path, data_dir=tmp_path / "data", n_ctx=512, n_threads=2,
                        sampling=greedy)  # fmt: skip
    app = TokendialApp(settings, config_path=tmp_path / "config.toml")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state.value == "ready", "model loaded", 6000)
        await _ask(pilot, app, "Name a colour.")
        first = app.chat_view.query(AssistantMessage).last().record
        await _ask(pilot, app, "And a fruit?")
        assert len(app.history) == 4 and first.done is not None and len(first.events) >= 4
        at = 2
        event = first.events[at]
        alternative = next(c for c in event.candidates if c.token_id != event.token_id and c.text.strip())
        assert not await app.branch(first.reply_id, at, alternative.token_id)  # asks first
        await pilot.press("y")
        await _wait(pilot, app, "branch of the first reply")
        branch = app.chat_view.query(AssistantMessage).last().record
        assert branch is not first and branch.done is not None
        assert [m.role for m in app.history] == ["user", "assistant"]
        assert branch.done.token_ids[:at] == first.done.token_ids[:at]
        assert branch.done.token_ids[at] == alternative.token_id
        # The KV cache held the longer chat; its common prefix with the branch (the prompt and the
        # reply's first tokens) was reused: only the alternative token was evaluated.
        done = branch.done
        assert done.prompt_evaluated == 1 < done.prompt_tokens
        store, chat_id = app.chat_session.store, app.chat_session.chat_id
        assert chat_id is not None
        saved = store.load_chat(chat_id).messages
        assert [m.text for m in saved] == ["Name a colour.", done.text]
        # Reopen it: the old reply comes back as a branch, [ shows it.
        await pilot.press("ctrl+n")
        assert await app.open_stored_chat(chat_id)
        await pilot.pause()
        shown = app.chat_view.query(AssistantMessage).last()
        assert "branch 2/2" in str(shown.border_title)
        app.token_view.focus()
        await pilot.press("left_square_bracket")
        await pilot.pause()
        shown = app.chat_view.query(AssistantMessage).last()
        assert shown.record.done is not None and shown.record.done.text == first.done.text
        assert [e.token_id for e in shown.record.events] == [e.token_id for e in first.events]
        assert app.history[-1].content == first.done.text
