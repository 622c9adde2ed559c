"""Across machines, on loopback: two ggml rpc-server workers and a llama-server spreading the model over
them (``--rpc``), driven by the llama-server backend. Greedy replies must equal the plain server's."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from settings.sampling import replace_params
from tests.llama_tools import LlamaTools
from tests.servers.server_helpers import GREEDY, run_reply, server_config, tokens_of
from tests.servers.server_procs import ServerProcess, llama_server, rpc_server
from tui.engine.backends.llama_server import LlamaServerEngine
from tui.engine.events import ChatMessage, EngineEvent, ReplyDone, StopKind
from tui.engine.live import LiveParams

pytestmark = pytest.mark.llama_server
PROMPTS = ("Name three colours.", "What is the capital of France?")


@pytest.fixture
def rpc_cluster(
    tools: LlamaTools, model_path: Path, server_logs: Path
) -> Iterator[tuple[ServerProcess, list[ServerProcess]]]:
    """Two workers and a llama-server offloading every layer to them."""
    workers = [rpc_server(tools, server_logs), rpc_server(tools, server_logs)]
    head: ServerProcess | None = None
    try:
        for worker in workers:
            worker.wait_port()
        endpoints = ",".join(f"127.0.0.1:{w.port}" for w in workers)
        head = llama_server(tools, model_path, server_logs, extra=["--rpc", endpoints, "-ngl", "99"])
        head.wait_http()
        yield head, workers
    finally:
        if head is not None:
            head.stop()
        for worker in workers:
            worker.stop()


def test_greedy_replies_over_rpc_workers_equal_the_plain_server(
    served: ServerProcess, rpc_cluster: tuple[ServerProcess, list[ServerProcess]]
) -> None:
    head, workers = rpc_cluster
    for worker in workers:
        assert "Accepted client connection" in worker.log_tail(100_000)  # the head uses both workers
    plain = LlamaServerEngine(server_config(served.url))
    spread = LlamaServerEngine(server_config(head.url))
    for prompt in PROMPTS:
        _, expected = run_reply(plain, prompt)
        _, got = run_reply(spread, prompt)
        assert got.token_ids == expected.token_ids, prompt
        assert got.text == expected.text
    plain.close()
    spread.close()


def test_a_worker_killed_mid_reply(rpc_cluster: tuple[ServerProcess, list[ServerProcess]]) -> None:
    head, workers = rpc_cluster
    engine = LlamaServerEngine(server_config(head.url))
    seen: list[EngineEvent] = []
    long = replace_params(GREEDY, max_new_tokens=300)
    for event in engine.stream_reply(
        [ChatMessage("user", "Count to 200.")], LiveParams(long), threading.Event()
    ):
        seen.append(event)
        if len(tokens_of(seen)) == 4:
            workers[1].kill()
    done = seen[-1]
    assert isinstance(done, ReplyDone)
    assert done.stop.kind is StopKind.ERROR, done.stop
    assert done.generated >= 4 and done.text == "".join(t.text for t in tokens_of(seen))
    assert done.stop.message and "partial reply is kept" in done.stop.message
    engine.close()
