"""End to end: the real `tokendial` app in a real terminal (tmux), typing a prompt and reading the screen."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.tmux, pytest.mark.real_model]

WAIT_S = 120.0  # a generous ceiling for a busy machine; not a speed assertion


class Tmux:
    """One tmux server (own socket) running one session."""

    def __init__(self, socket: str, session: str) -> None:
        self.socket = socket
        self.session = session

    def run(self, *args: str) -> str:
        """Run a tmux command on this server; return its stdout."""
        result = subprocess.run(
            ["tmux", "-L", self.socket, "-f", os.devnull, *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return result.stdout

    def screen(self) -> str:
        """The visible text of the pane."""
        return self.run("capture-pane", "-p", "-t", self.session)

    def wait_for(self, condition: Callable[[str], bool], what: str) -> str:
        """Poll the screen until ``condition(screen)``; fail with the last screen after WAIT_S."""
        deadline = time.monotonic() + WAIT_S
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if condition(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; last screen:\n{screen}")


@pytest.fixture
def tmux_app(model_path: Path, tmp_path: Path) -> Iterator[Tmux]:
    """`tokendial` on the real model in a 160x50 tmux session (isolated config and data)."""
    if shutil.which("tmux") is None:
        if os.environ.get("TOKENDIAL_REQUIRE_MODEL") == "1":
            pytest.fail("tmux is not installed")
        pytest.skip("tmux is not installed")
    tmux = Tmux(f"tokendial-test-{os.getpid()}", "app")
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "TERM": "xterm-256color",
    }
    command = " ".join(
        [
            "env",
            "-u",
            "COLUMNS",
            "-u",
            "LINES",
            *(f"{key}={shlex.quote(value)}" for key, value in env.items()),
            shlex.quote(sys.executable),
            "-m",
            "tui.cli",
            "--model-path",
            shlex.quote(str(model_path)),
            "--n-ctx",
            "1024",
            "--sampling.max-new-tokens",
            "40",
        ]
    )
    repo = Path(__file__).resolve().parents[2]
    # The pane gets its 160x50 size before the app starts (respawned into the sized session).
    tmux.run("new-session", "-d", "-s", tmux.session, "-x", "160", "-y", "50", "-c", str(repo), "sleep 600")
    tmux.run("respawn-pane", "-k", "-t", tmux.session, "-c", str(repo), command)
    try:
        yield tmux
    finally:
        subprocess.run(["tmux", "-L", tmux.socket, "kill-server"], capture_output=True, timeout=30)


def test_type_a_prompt_and_read_the_reply_and_its_stop_badge(tmux_app: Tmux) -> None:
    tmux = tmux_app
    tmux.wait_for(lambda s: " ready " in s and "Q4_1" in s, "the model to load")
    # Text and Enter in one write: Enter must not overtake the typed characters.
    tmux.run("send-keys", "-t", tmux.session, "What is the capital of France?", "Enter")
    screen = tmux.wait_for(
        lambda s: ("end of sequence <|im_end|>" in s or "stopped at 40/40" in s) and "tok/s" in s,
        "the reply's stop badge, and its speed in the status bar",
    )
    assert "What is the capital of France?" in screen
    assert "╭─ assistant" in screen
    assert "tok/s" in screen and "first token" in screen
    assert "Traceback" not in screen
    tmux.run("send-keys", "-t", tmux.session, "C-t")
    screen = tmux.wait_for(lambda s: "╭─ Tokens" in s, "the token view")
    assert "END OF SEQUENCE  <|im_end|>" in screen or "MAX NEW TOKENS  stopped at 40/40" in screen
    assert "␣" in screen  # spaces are visible between tokens
    tmux.run("send-keys", "-t", tmux.session, "C-q")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if subprocess.run(["tmux", "-L", tmux.socket, "has-session"], capture_output=True).returncode != 0:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the app did not quit on ctrl+q")
