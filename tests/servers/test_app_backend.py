"""The server backends in the running app (Pilot): a server not running at start, the retry key, and
the backend dialog (F12) switching the engine, each against a real llama-server on 127.0.0.1."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input, RadioButton

from settings.config import Backend, Settings
from settings.sampling import SamplingMode, SamplingParams
from tests.llama_tools import LlamaTools
from tests.servers.misbehaving import Fault, Misbehaving
from tests.servers.server_procs import ServerProcess, free_port, llama_server
from tui.app import TokendialApp
from tui.core.state import ModelState
from tui.engine.events import ReplyDone, StopKind
from tui.screens.backend_picker import BackendPickerScreen, check_choice
from tui.store import default_db_path
from tui.widgets.chat_view import Notice

pytestmark = pytest.mark.llama_server
SIZE = (120, 40)
GREEDY = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0, max_new_tokens=6)


def app_for(tmp_path: Path, **server: Any) -> TokendialApp:
    """The app on ``server`` settings (backend, server_url, ...), data in ``tmp_path``."""
    settings = Settings(
        model_path=tmp_path / "none.gguf", data_dir=tmp_path / "data", sampling=GREEDY, **server
    )
    return TokendialApp(settings, config_path=tmp_path / "config.toml")


async def wait_for(
    pilot: Pilot[Any], condition: Callable[[], bool], what: str, limit_s: float = 60.0
) -> None:
    """Let the app run until ``condition()`` holds."""
    for _ in range(int(limit_s / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    app = pilot.app
    state = app.model_state if isinstance(app, TokendialApp) else None
    raise AssertionError(f"timed out waiting for: {what} (screen {app.screen}, model {state})")


def notices(app: TokendialApp) -> str:
    """The text of the transcript's notices."""
    return " ".join(str(n.render()) for n in app.views.chat_view.query(Notice))


def again(app: TokendialApp, first: Widget) -> bool:
    """A new connection failure is shown (in place of ``first``)."""
    shown = app.views.chat_view.query("#load-error")
    return bool(shown) and shown.first() is not first


async def send(pilot: Pilot[Any], app: TokendialApp, prompt: str) -> None:
    """Type ``prompt`` in the prompt box and press Enter."""
    app.views.prompt.focus()
    app.views.prompt.text = prompt
    await pilot.press("enter")


async def ended(pilot: Pilot[Any], app: TokendialApp, limit_s: float = 60.0) -> ReplyDone:
    """Wait for the reply to end; its ReplyDone."""
    await wait_for(pilot, lambda: app.views.status.last_done is not None, "the reply ended", limit_s)
    done = app.views.status.last_done
    assert done is not None
    return done


async def reply(pilot: Pilot[Any], app: TokendialApp, prompt: str) -> ReplyDone:
    """Send ``prompt`` and wait for its reply to end."""
    await send(pilot, app, prompt)
    return await ended(pilot, app)


async def test_server_not_running_at_start_then_the_retry_key_connects(
    tools: LlamaTools, model_path: Path, server_logs: Path, tmp_path: Path
) -> None:
    port = free_port()
    app = app_for(tmp_path, backend=Backend.LLAMA_SERVER, server_url=f"http://127.0.0.1:{port}")
    process: ServerProcess | None = None
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.model_state is ModelState.FAILED, "the connection failed")
            shown = notices(app)
            assert f"No connection to llama-server 127.0.0.1:{port}" in shown
            assert "Connection refused" in shown and "f10" in shown  # the cause, and what to do
            assert "not connected" in str(app.views.status.render())

            first = app.views.chat_view.query_one("#load-error")
            await pilot.press("f10")  # still not running: it fails again, with the same clear message
            await wait_for(
                pilot, lambda: app.model_state is ModelState.FAILED and again(app, first), "failed again"
            )
            assert "Connection refused" in notices(app)

            process = llama_server(tools, model_path, server_logs, port=port)  # the user starts it
            process.wait_http()
            await pilot.press("f10")
            await wait_for(pilot, lambda: app.model_state is ModelState.READY, "connected on retry")
            bar = str(app.views.status.render())
            assert f"llama-server 127.0.0.1:{port}" in bar and "SmolLM2" in bar and "/2048" in bar
            assert "No connection" not in notices(app)

            done = await reply(pilot, app, "Say hi.")
            assert done.stop.kind is StopKind.MAX_TOKENS and done.generated == 6
    finally:
        if process is not None:
            process.stop()


async def test_the_backend_dialog_switches_the_running_engine(
    served: ServerProcess, model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENDIAL_API_KEY", "sk-never-written-anywhere")
    app = app_for(tmp_path, backend=Backend.OPENAI, server_url="http://127.0.0.1:9/v1")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state is ModelState.FAILED, "the first server is not there")
        await pilot.press("f12")
        await wait_for(pilot, lambda: isinstance(app.screen, BackendPickerScreen), "the dialog opened")
        dialog = app.screen
        assert "API key: found" in str(dialog.query_one("#backend-key-note").render())
        assert "sk-never" not in " ".join(str(w.render()) for w in dialog.query("*"))
        dialog.query_one("#backend-llama-server", RadioButton).value = True
        url = dialog.query_one("#backend-url", Input)
        url.value = "not a url"
        await pilot.click("#backend-connect")
        assert "Not a server URL" in str(dialog.query_one("#backend-problem").render())  # stays open
        assert app.screen is dialog
        url.value = served.url
        url.focus()  # a second click within the button's 0.2 s press effect is ignored: Enter instead
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.model_state is ModelState.READY, "connected to the chosen server")
        assert f"llama-server {served.url.removeprefix('http://')}" in str(app.views.status.render())
        done = await reply(pilot, app, "Say hi.")
        assert done.stop.kind is StopKind.MAX_TOKENS and done.generated == 6
        assert app.engines.backend == "llama-server" and app.settings.backend is Backend.OPENAI  # not saved

        assert await app.switch_model(model_path)  # F2's way: a model file runs here, locally
        await wait_for(pilot, lambda: app.model_state is ModelState.READY, "the local model loaded")
        assert app.engines.backend == "local" and "CPU" in str(app.views.status.render())
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(b"sk-never" not in p.read_bytes() for p in written)  # the key is in no file (store, config)


async def test_server_killed_mid_reply_in_the_app_keeps_the_partial_reply_in_the_store(
    tools: LlamaTools, model_path: Path, server_logs: Path, tmp_path: Path
) -> None:
    process = llama_server(tools, model_path, server_logs)
    process.wait_http()
    long = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0, max_new_tokens=300)
    settings = Settings(
        model_path=tmp_path / "none.gguf", data_dir=tmp_path / "data", sampling=long,
        backend=Backend.LLAMA_SERVER, server_url=process.url,
    )  # fmt: skip
    app = TokendialApp(settings, config_path=tmp_path / "config.toml")
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.model_state is ModelState.READY, "connected")
            await send(pilot, app, "Count to 200.")
            await wait_for(pilot, lambda: app.views.status.live_tokens >= 5, "a few tokens streamed")
            process.kill()
            done = await ended(pilot, app)
            assert done.stop.kind is StopKind.ERROR
            assert done.stop.message and "connection" in done.stop.message
            assert "partial reply is kept" in done.stop.message and done.generated >= 5
            assert "error" in str(app.views.status.render()).lower()  # the badge says so
        conn = sqlite3.connect(default_db_path(tmp_path / "data"))
        rows = conn.execute("SELECT role, text, status FROM messages ORDER BY chat_id, position").fetchall()
        conn.close()
        assert rows == [("user", "Count to 200.", "finished"), ("assistant", done.text, "finished")]
        assert done.text  # what arrived before the server died is on disk
    finally:
        process.stop()


async def test_slow_first_byte_in_the_app_shows_progress_and_esc_cancels(
    served: ServerProcess, tmp_path: Path
) -> None:
    fake = Misbehaving(served.url).start()
    fake.fault, fake.delay_s = Fault.SLOW_FIRST_BYTE, 60.0
    app = app_for(tmp_path, backend=Backend.LLAMA_SERVER, server_url=fake.url)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.model_state is ModelState.READY, "connected")
            await send(pilot, app, "Hi")
            await wait_for(pilot, lambda: "reading the prompt" in shown_waiting(app), "progress shown")
            await pilot.press("escape")  # while the server is still silent
            done = await ended(pilot, app, 20)
            assert done.stop.kind is StopKind.CANCELLED
            assert not fake.first_byte_sent.is_set()
    finally:
        fake.stop()


def shown_waiting(app: TokendialApp) -> str:
    """The text of the reply's waiting line(s)."""
    return " ".join(str(w.render()) for w in app.views.chat_view.query(".waiting"))


def test_a_choice_is_checked_before_it_is_tried() -> None:
    assert check_choice("llama-server", "localhost:8080", "") == (
        "Not a server URL: 'localhost:8080' (http://host:port, an openai URL may end in /v1)."
    )
    chosen = check_choice("openai", " http://box:8000/v1 ", " qwen ")
    assert not isinstance(chosen, str) and (chosen.url, chosen.model) == ("http://box:8000/v1", "qwen")
    local = check_choice("local", "", "")
    assert not isinstance(local, str) and local.model is None
