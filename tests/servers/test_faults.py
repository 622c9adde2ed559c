"""Faults over a server: each against a real process on 127.0.0.1 (llama-server, or a misbehaving
fake in front of one). The promise in every case: one clear message, the partial reply kept, and
the reply ends with exactly one ReplyDone whose stop reason names the cause."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from settings.sampling import replace_params
from tests.llama_tools import LlamaTools
from tests.servers.misbehaving import Fault, Misbehaving
from tests.servers.server_helpers import GREEDY, run_reply, server_config, tokens_of
from tests.servers.server_procs import ServerProcess, free_port, llama_server
from tui.engine.backends.llama_server import LlamaServerEngine
from tui.engine.backends.openai import OpenAIEngine
from tui.engine.events import ChatMessage, EngineEvent, ModelLoadError, PromptProgress, ReplyDone, StopKind
from tui.engine.live import LiveParams

pytestmark = pytest.mark.llama_server
LONG = replace_params(GREEDY, max_new_tokens=300)


@pytest.fixture
def fake(served: ServerProcess) -> Iterator[Misbehaving]:
    """A misbehaving server in front of the session's llama-server."""
    running = Misbehaving(served.url).start()
    yield running
    running.stop()


def test_server_not_running_at_start_then_retry(
    tools: LlamaTools, model_path: Path, server_logs: Path
) -> None:
    port = free_port()
    with pytest.raises(ModelLoadError) as caught:
        LlamaServerEngine(server_config(f"http://127.0.0.1:{port}"))
    assert f"cannot reach the server at http://127.0.0.1:{port}" in caught.value.message
    assert "retry" in caught.value.hint
    process = llama_server(tools, model_path, server_logs, port=port)  # the user starts it, then retries
    try:
        process.wait_http()
        engine = LlamaServerEngine(server_config(process.url))
        _, done = run_reply(engine, "Hi", replace_params(GREEDY, max_new_tokens=3))
        assert done.generated == 3
        engine.close()
    finally:
        process.stop()


def test_server_killed_mid_reply_keeps_the_partial_reply(
    tools: LlamaTools, model_path: Path, server_logs: Path
) -> None:
    process = llama_server(tools, model_path, server_logs)
    try:
        process.wait_http()
        engine = LlamaServerEngine(server_config(process.url))
        seen: list[EngineEvent] = []
        for event in engine.stream_reply(
            [ChatMessage("user", "Count to 200.")], LiveParams(LONG), threading.Event()
        ):
            seen.append(event)
            if len(tokens_of(seen)) == 5:
                process.kill()
        done = seen[-1]
        assert isinstance(done, ReplyDone)
        assert done.stop.kind is StopKind.ERROR
        assert (
            done.stop.message
            and "connection" in done.stop.message
            and "partial reply is kept" in done.stop.message
        )
        assert done.generated >= 5 and done.text == "".join(t.text for t in tokens_of(seen))
        engine.close()
    finally:
        process.stop()


def test_http_401_quotes_the_servers_message(tools: LlamaTools, model_path: Path, server_logs: Path) -> None:
    process = llama_server(tools, model_path, server_logs, extra=["--api-key", "sesame"])
    try:
        process.wait_http()
        with pytest.raises(ModelLoadError) as caught:
            LlamaServerEngine(server_config(process.url))
        assert "HTTP 401" in caught.value.message and "Invalid API Key" in caught.value.message
        assert "API key" in caught.value.hint
        config = server_config(process.url, api_key="sesame")
        assert "sesame" not in repr(config)  # never in a log line
        engine = LlamaServerEngine(config)
        _, done = run_reply(engine, "Hi", replace_params(GREEDY, max_new_tokens=2))
        assert done.generated == 2
        engine.close()
    finally:
        process.stop()


def test_http_404_for_a_wrong_url(served: ServerProcess) -> None:
    with pytest.raises(ModelLoadError) as caught:
        OpenAIEngine(server_config(served.url + "/nothing/here", kind="openai"))
    assert "HTTP 404" in caught.value.message and "--server-url" in caught.value.hint


def test_http_500_mid_chat_is_the_replys_error(fake: Misbehaving) -> None:
    engine = LlamaServerEngine(server_config(fake.url))
    fake.fault = Fault.HTTP_500
    _, done = run_reply(engine, "Hi")
    assert done.stop.kind is StopKind.ERROR
    assert (
        done.stop.message and "HTTP 500" in done.stop.message and "the GPU caught fire" in done.stop.message
    )


def test_malformed_stream_event(fake: Misbehaving) -> None:
    engine = LlamaServerEngine(server_config(fake.url))
    fake.fault = Fault.MALFORMED
    events, done = run_reply(engine, "Hi")
    assert done.stop.kind is StopKind.ERROR
    assert done.stop.message and "malformed stream event" in done.stop.message
    assert done.text == "".join(t.text for t in tokens_of(events))  # what came before is kept


def test_truncated_stream(fake: Misbehaving) -> None:
    engine = LlamaServerEngine(server_config(fake.url))
    fake.fault = Fault.TRUNCATED
    events, done = run_reply(engine, "Hi", LONG)
    assert done.stop.kind is StopKind.ERROR
    assert done.stop.message and "without a final event" in done.stop.message
    assert done.generated == len(tokens_of(events)) > 0


def test_server_ignoring_n_probs_gives_unknown_probabilities(fake: Misbehaving) -> None:
    engine = LlamaServerEngine(server_config(fake.url))
    fake.fault = Fault.NO_PROBS
    events, done = run_reply(engine, "Hi")
    assert fake.requests[-1]["n_probs"] == 5
    tokens = tokens_of(events)
    assert tokens and done.stop.kind in (StopKind.EOS, StopKind.MAX_TOKENS)
    for token in tokens:
        assert token.candidates == ()
        assert token.p_raw != token.p_raw and token.p_final != token.p_final  # NaN: unknown


def test_slow_first_byte_shows_progress_and_cancel_works(fake: Misbehaving) -> None:
    engine = LlamaServerEngine(server_config(fake.url))
    fake.fault = Fault.SLOW_FIRST_BYTE
    fake.delay_s = 30.0
    cancel = threading.Event()
    events: list[EngineEvent] = []
    for event in engine.stream_reply([ChatMessage("user", "Hi")], LiveParams(GREEDY), cancel):
        events.append(event)
        if isinstance(event, PromptProgress):
            cancel.set()  # Esc while the server has not answered yet
    done = events[-1]
    assert isinstance(done, ReplyDone) and done.stop.kind is StopKind.CANCELLED
    assert not fake.first_byte_sent.is_set()  # it ended while the server was still silent
    assert isinstance(events[0], PromptProgress) and events[0].evaluated == 0


def test_wrong_model_name(served: ServerProcess) -> None:
    with pytest.raises(ModelLoadError) as caught:
        OpenAIEngine(server_config(served.url, kind="openai", model="gpt-17"))
    assert "no model 'gpt-17'" in caught.value.message and "SmolLM2" in caught.value.message
    with pytest.raises(ModelLoadError) as native:
        LlamaServerEngine(server_config(served.url, model="gpt-17"))
    assert "not 'gpt-17'" in native.value.message


def test_openai_finish_reasons_from_a_scripted_server(fake: Misbehaving) -> None:
    engine = OpenAIEngine(server_config(fake.url, kind="openai"))
    fake.fault = Fault.SCRIPTED

    def chunk(text: str, finish: str | None = None, stop_reason: object = None) -> str:
        choice: dict[str, object] = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
        if finish:
            choice["stop_reason"] = stop_reason
        return json.dumps({"choices": [choice]})

    fake.script = [chunk("Hel"), chunk("lo", "stop", "END"), "[DONE]"]
    events, by_string = run_reply(engine, "Hi")
    for token in tokens_of(events):  # a server that ignores logprobs: each chunk a token, all unknown
        assert token.candidates == () and token.p_raw != token.p_raw and token.token_id == -1
    assert (
        by_string.stop.kind is StopKind.STOP_STRING and by_string.stop.stop_string == "END"
    )  # vLLM's stop_reason
    assert by_string.text == "Hello"
    fake.script = [chunk("Hi"), chunk("", "stop"), "[DONE]"]
    _, eos = run_reply(engine, "Hi")
    assert eos.stop.kind is StopKind.EOS and eos.stop.token_text is None  # which token: unknown
    assert "not reported" in eos.stop.label()
    fake.script = [chunk("Hi"), chunk(" there", "length"), "[DONE]"]
    _, capped = run_reply(engine, "Hi")
    assert capped.stop.kind is StopKind.MAX_TOKENS
    fake.script = [chunk("Hi"), "{not json"]
    _, broken = run_reply(engine, "Hi")
    assert broken.stop.kind is StopKind.ERROR and broken.text == "Hi"
    fake.script = [chunk("Hi")]
    _, cut = run_reply(engine, "Hi")
    assert cut.stop.kind is StopKind.ERROR and "without a finish_reason" in (cut.stop.message or "")
    engine.close()
