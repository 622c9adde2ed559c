"""The OpenAI-compatible backend against llama-server's own /v1 (a real server on 127.0.0.1)."""

from __future__ import annotations

import math
import threading

import pytest

from settings.sampling import SamplingParams, replace_params
from tests.servers.server_helpers import GREEDY, run_reply, server_config, tokens_of
from tests.servers.server_procs import ServerProcess
from tui.engine.backends.common import UNKNOWN_TOKEN, ReplyState
from tui.engine.backends.llama_server import LlamaServerEngine
from tui.engine.backends.openai import TOP_LOGPROBS_MAX, OpenAIEngine
from tui.engine.events import ChatMessage, EngineEvent, ReplyDone, StopKind, TokenEvent
from tui.engine.live import LiveParams

pytestmark = pytest.mark.llama_server


@pytest.fixture
def openai_engine(served: ServerProcess) -> OpenAIEngine:
    """The openai backend on the session's llama-server, its URL given with /v1."""
    return OpenAIEngine(server_config(served.url + "/v1", kind="openai"))


def test_reply_with_logprobs_and_what_stays_unknown(
    openai_engine: OpenAIEngine, served: ServerProcess
) -> None:
    events, done = run_reply(openai_engine, "Name three colours.")
    tokens = tokens_of(events)
    assert tokens and done.text == "".join(t.text for t in tokens)
    for token in tokens:
        assert token.token_id == UNKNOWN_TOKEN  # chat completions send text, not ids
        assert 0.0 < token.p_raw <= 1.0
        assert math.isnan(token.p_final) and math.isnan(token.entropy)  # not reported: unknown
        assert len(token.candidates) == 5
        assert math.isclose(token.candidates[0].p_raw, token.p_raw, rel_tol=1e-4)  # greedy: the top one
    native = LlamaServerEngine(server_config(served.url))
    _, same = run_reply(native, "Name three colours.")
    assert done.text == same.text  # the same model and template, greedy: the same reply
    assert openai_engine.info.name.startswith("SmolLM2")
    assert openai_engine.count_tokens("Hello world") == native.count_tokens("Hello world")  # its /tokenize
    native.close()


def test_top_logprobs_is_capped(served: ServerProcess) -> None:
    engine = OpenAIEngine(server_config(served.url, kind="openai", top_n=50))
    assert engine.top_logprobs == TOP_LOGPROBS_MAX
    body = engine.request_body([ChatMessage("user", "x")], _state(GREEDY))
    assert body["top_logprobs"] == 20 and body["logprobs"] is True


def _state(params: SamplingParams) -> ReplyState:
    return ReplyState(LiveParams(params), threading.Event(), ())


def test_finish_reasons_length_and_stop(openai_engine: OpenAIEngine) -> None:
    _, capped = run_reply(openai_engine, "Tell me a story.", replace_params(GREEDY, max_new_tokens=4))
    assert capped.stop.kind is StopKind.MAX_TOKENS and capped.generated == 4
    _, ended = run_reply(openai_engine, "Say hello.", replace_params(GREEDY, max_new_tokens=200))
    assert ended.stop.kind is StopKind.EOS and ended.stop.token_text is None  # the server does not say which
    _, long = run_reply(openai_engine, "Tell me a story.", replace_params(GREEDY, max_new_tokens=30))
    word = long.text.split()[3]
    _, stopped = run_reply(openai_engine, "Tell me a story.", replace_params(GREEDY, stop=(word,)))
    assert stopped.stop.kind is StopKind.STOP_STRING and stopped.stop.stop_string == word  # matched here
    assert stopped.text == long.text[: long.text.index(word)]


def test_a_sampler_change_mid_reply_applies_to_the_next_reply(openai_engine: OpenAIEngine) -> None:
    live = LiveParams(replace_params(GREEDY, max_new_tokens=12))
    seen: list[EngineEvent] = []
    changed = SamplingParams(temperature=1.0, max_new_tokens=12)
    for event in openai_engine.stream_reply(
        [ChatMessage("user", "Tell me a story.")], live, threading.Event()
    ):
        seen.append(event)
        if isinstance(event, TokenEvent) and event.index == 2:
            live.set(changed)
    done = seen[-1]
    assert {t.params_version for t in tokens_of(seen)} == {0}  # no resume: made by the old samplers
    assert done.params[1] == changed  # type: ignore[union-attr]


def test_llama_cpp_pythons_own_server(lcp_served: ServerProcess) -> None:
    """Another OpenAI-compatible server: no /tokenize, its model named by path, logprobs as text."""
    engine = OpenAIEngine(server_config(lcp_served.url, kind="openai"))
    assert engine.info.name.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert engine.info.warnings == ("token counts are estimates: the server has no /tokenize",)
    events, done = run_reply(engine, "Name three colours.", replace_params(GREEDY, max_new_tokens=6))
    tokens = tokens_of(events)
    assert done.stop.kind in (StopKind.EOS, StopKind.MAX_TOKENS) and tokens
    assert done.text == "".join(t.text for t in tokens)
    for token in tokens:
        assert 0.0 < token.p_raw <= 1.0 and math.isnan(token.p_final)
        assert len(token.candidates) == 5 and token.candidates[0].text == token.piece  # greedy: the top one
    _, stopped = run_reply(engine, "Name three colours.", replace_params(GREEDY, stop=(tokens[1].text,)))
    assert stopped.stop.kind is StopKind.STOP_STRING
    engine.close()


def test_text_completion_is_refused_with_a_clear_reason(openai_engine: OpenAIEngine) -> None:
    events = list(
        openai_engine.stream_reply(
            [ChatMessage("user", "Once upon a time")], LiveParams(GREEDY), threading.Event(), raw=True
        )
    )
    done = events[-1]
    assert isinstance(done, ReplyDone) and done.stop.kind is StopKind.ERROR
    assert "text completion is not available" in (done.stop.message or "")
