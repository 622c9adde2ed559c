"""Real llama.cpp server processes on 127.0.0.1 for the tests (and the benchmark): start, wait, stop.

The binaries come from ``tests.llama_tools`` (built once, cached). Missing binaries skip a test with
the reason, or fail it when ``TOKENDIAL_REQUIRE_MODEL=1`` (CI builds them first).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.llama_tools import LlamaTools, find_tools

START_TIMEOUT_S = 120.0


def require_tools() -> LlamaTools:
    """The built llama.cpp tools; skip (or fail in CI) with the reason when they are missing."""
    import pytest

    tools = find_tools()
    if tools is None:
        message = "llama.cpp tools not built: run `python -m tests.llama_tools` (several minutes, cached)"
        if os.environ.get("TOKENDIAL_REQUIRE_MODEL") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return tools


def free_port() -> int:
    """A TCP port nobody listens on now (127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """One started process and where its log goes."""

    args: list[str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        """Start it (its output goes to ``log_path``)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    def log_tail(self, chars: int = 3000) -> str:
        """The end of its log, for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_http(self, path: str = "/health", timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until ``path`` answers 200 (a llama-server loads its model first)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if httpx.get(self.url + path, timeout=2.0, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.args[0]} did not come up in {timeout_s:.0f} s:\n{self.log_tail()}")

    def wait_port(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until the port accepts connections (rpc-server speaks no HTTP)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.args[0]} did not listen in {timeout_s:.0f} s:\n{self.log_tail()}")

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.args[0]} exited with {self.process.returncode}:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL it, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """End it (SIGTERM, then SIGKILL)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


def llama_server(
    tools: LlamaTools,
    model: Path,
    log_dir: Path,
    *,
    n_ctx: int = 2048,
    threads: int = 1,
    extra: Sequence[str] = (),
    port: int | None = None,
) -> ServerProcess:
    """A started llama-server for ``model`` on a free port (one slot; not yet waited for)."""
    port = port or free_port()
    args = [
        str(tools.server), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
        "-c", str(n_ctx), "-np", "1", "-t", str(threads), "-tb", str(threads), "--no-webui",
        *(() if "-ngl" in extra else ("-ngl", "0")), *extra,
    ]  # fmt: skip
    return ServerProcess(args, port, log_dir / f"llama-server-{port}.log").start()


def llama_cpp_python_server(model: Path, log_dir: Path, *, n_ctx: int = 2048) -> ServerProcess:
    """llama-cpp-python's own server (``python -m llama_cpp.server``, OpenAI-compatible), not waited for."""
    port = free_port()
    args = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", "1", "--logits_all", "true",
    ]  # fmt: skip
    return ServerProcess(args, port, log_dir / f"llama-cpp-python-server-{port}.log").start()


def rpc_server(tools: LlamaTools, log_dir: Path, *, threads: int = 1) -> ServerProcess:
    """A started ggml rpc-server worker on a free loopback port (not yet waited for)."""
    port = free_port()
    args = [str(tools.rpc_server), "-H", "127.0.0.1", "-p", str(port), "-t", str(threads)]
    return ServerProcess(args, port, log_dir / f"rpc-server-{port}.log").start()
