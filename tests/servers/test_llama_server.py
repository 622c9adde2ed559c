"""The llama-server backend against a real llama-server on 127.0.0.1 (the default model)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import pytest

from settings.sampling import SamplingMode, SamplingParams, replace_params
from tests.servers.server_helpers import GREEDY, run_reply, server_config, tokens_of
from tests.servers.server_procs import ServerProcess
from tui.engine.backends.llama_server import LlamaServerEngine
from tui.engine.events import ChatMessage, CutBy, EngineEvent, PromptProgress, ReplyDone, StopKind, TokenEvent
from tui.engine.live import LiveParams

pytestmark = pytest.mark.llama_server

SAMPLE = SamplingParams(temperature=0.9, top_k=8, top_p=0.95, min_p=0.02, seed=1234, max_new_tokens=24)


def test_model_facts_come_from_props(engine: LlamaServerEngine, served: ServerProcess) -> None:
    info = engine.info
    assert info.backend == "llama-server"
    assert info.server == f"127.0.0.1:{served.port}"
    assert info.gpu_label == f"llama-server 127.0.0.1:{served.port}"  # what the status bar shows
    assert info.n_ctx == 2048
    assert info.n_vocab == 49152  # SmolLM2's vocabulary, from /v1/models
    assert info.eos_text == "<|im_end|>"
    assert info.has_chat_template
    assert info.quantization == "Q4_1"
    assert info.size_label == "135M"


def test_greedy_reply_carries_ids_raw_probabilities_and_greedy_cuts(engine: LlamaServerEngine) -> None:
    events, done = run_reply(engine, "Name three colours.")
    tokens = tokens_of(events)
    assert done.stop.kind in (StopKind.EOS, StopKind.MAX_TOKENS)
    assert done.text == "".join(t.text for t in tokens)
    assert list(done.token_ids) == [t.token_id for t in tokens]
    assert engine.detokenize(list(done.token_ids)) == done.text
    for index, token in enumerate(tokens):
        assert token.index == index
        assert token.p_final == 1.0  # arg-max: known without the server's help
        assert 0.0 < token.p_raw <= 1.0
        assert len(token.candidates) == 5
        top = token.candidates[0]
        assert top.token_id == token.token_id  # greedy picks the most likely token
        assert math.isclose(top.p_raw, token.p_raw, rel_tol=1e-5)
        assert [c.cut_by for c in token.candidates[1:]] == [CutBy.GREEDY] * 4
        assert sum(c.p_raw for c in token.candidates) <= 1.0 + 1e-5
        assert math.isnan(token.entropy) and math.isnan(top.logit)  # not reported: unknown, not invented
    assert done.prompt_tokens == len(engine.format_prompt([ChatMessage("user", "Name three colours.")]))


def test_sampled_probabilities_are_the_servers_post_sampler_ones(engine: LlamaServerEngine) -> None:
    events, done = run_reply(engine, "Write a word.", replace_params(SAMPLE, top_k=3))
    tokens = tokens_of(events)
    assert tokens
    for token in tokens:
        assert len(token.candidates) <= 3  # only top-k survivors have a probability after sampling
        assert math.isclose(sum(c.p_final for c in token.candidates), 1.0, abs_tol=1e-4)
        chosen = next(c for c in token.candidates if c.token_id == token.token_id)
        assert chosen.p_final == token.p_final
        assert math.isnan(token.p_raw)
    _, again = run_reply(engine, "Write a word.", replace_params(SAMPLE, top_k=3))
    assert again.token_ids == done.token_ids  # the same seed draws the same reply
    assert again.seed == done.seed == 1234


def test_raw_probabilities_in_sample_mode_when_asked(served: ServerProcess) -> None:
    engine = LlamaServerEngine(server_config(served.url, probs="raw"))
    events, _ = run_reply(engine, "Write a word.", SAMPLE)
    for token in tokens_of(events):
        assert 0.0 < token.p_raw <= 1.0 and math.isnan(token.p_final)
        assert all(math.isnan(c.p_final) for c in token.candidates)
    engine.close()


def test_stop_reasons_eos_max_tokens_and_stop_string(engine: LlamaServerEngine) -> None:
    _, eos = run_reply(engine, "Say hello.", replace_params(GREEDY, max_new_tokens=200))
    assert eos.stop.kind is StopKind.EOS
    assert eos.stop.token_text == "<|im_end|>" and eos.stop.token_id is not None
    assert eos.stop.token_id not in eos.token_ids  # the end token ends the reply; it is not part of it

    _, capped = run_reply(engine, "Tell me a long story.", replace_params(GREEDY, max_new_tokens=5))
    assert capped.stop.kind is StopKind.MAX_TOKENS and capped.generated == 5 and capped.stop.limit == 5
    assert engine.last_timings["predicted_n"] == 5  # the server's own timings of that reply (the benchmark's)

    _, long = run_reply(engine, "Tell me a long story.", replace_params(GREEDY, max_new_tokens=30))
    word = long.text.split()[4]
    _, stopped = run_reply(engine, "Tell me a long story.", replace_params(GREEDY, stop=(word,)))
    assert stopped.stop.kind is StopKind.STOP_STRING and stopped.stop.stop_string == word
    assert stopped.text == long.text[: long.text.index(word)]


def test_prompt_progress_then_prefix_reuse_on_the_next_turn(engine: LlamaServerEngine) -> None:
    first_events, first = run_reply(engine, "What is a cat?")
    progress = [e for e in first_events if isinstance(e, PromptProgress)]
    first_token = next(i for i, e in enumerate(first_events) if isinstance(e, TokenEvent))
    assert progress and first_events.index(progress[0]) < first_token
    turn = [
        ChatMessage("user", "What is a cat?"),
        ChatMessage("assistant", first.text),
        ChatMessage("user", "And a dog?"),
    ]
    _, second = run_reply(engine, turn)
    assert second.prompt_evaluated < second.prompt_tokens // 2  # the first turn came from the cache


def test_cancel_closes_the_stream_and_the_server_is_free_again(engine: LlamaServerEngine) -> None:
    cancel = threading.Event()
    seen: list[EngineEvent] = []
    long = replace_params(GREEDY, max_new_tokens=400)
    for event in engine.stream_reply([ChatMessage("user", "Count to 300.")], LiveParams(long), cancel):
        seen.append(event)
        if len(tokens_of(seen)) == 3:
            cancel.set()
    done = seen[-1]
    assert done.stop.kind is StopKind.CANCELLED and done.generated == 3  # type: ignore[union-attr]
    _, after = run_reply(engine, "Say hi.", replace_params(GREEDY, max_new_tokens=3))
    assert after.generated == 3  # the slot was released: the next reply did not wait for 400 tokens


def _change_after(
    live: LiveParams, events: Iterator[EngineEvent], at: int, new: SamplingParams
) -> list[EngineEvent]:
    seen: list[EngineEvent] = []
    for event in events:
        seen.append(event)
        if isinstance(event, TokenEvent) and event.index == at - 1:
            live.set(new)
    return seen


def test_a_mid_reply_change_resumes_from_the_tokens_so_far(engine: LlamaServerEngine) -> None:
    prompt = [ChatMessage("user", "Tell me about the sea.")]
    greedy = replace_params(GREEDY, max_new_tokens=20)
    _, plain = run_reply(engine, prompt, greedy)
    live = LiveParams(greedy)
    changed = replace_params(SAMPLE, max_new_tokens=20)
    seen = _change_after(live, engine.stream_reply(prompt, live, threading.Event()), 6, changed)
    done = seen[-1]
    tokens = tokens_of(seen)
    assert [t.params_version for t in tokens] == [0] * 6 + [1] * (len(tokens) - 6)
    assert done.token_ids[:6] == plain.token_ids[:6]  # type: ignore[union-attr]
    assert done.params == {0: greedy, 1: changed}  # type: ignore[union-attr]
    assert done.text == "".join(t.text for t in tokens)  # type: ignore[union-attr]
    (resume,) = engine.last_resumes
    assert resume.at_token == 6
    assert 1 <= resume.reevaluated <= 3  # the prompt and the 6 tokens came from the server's cache
    assert resume.cached >= done.prompt_tokens  # type: ignore[union-attr]


def test_a_cap_change_mid_reply_needs_no_resume(engine: LlamaServerEngine) -> None:
    live = LiveParams(replace_params(GREEDY, max_new_tokens=40))
    prompt = [ChatMessage("user", "Tell me about the sea.")]
    seen = _change_after(
        live,
        engine.stream_reply(prompt, live, threading.Event()),
        4,
        replace_params(GREEDY, max_new_tokens=7),
    )
    done = seen[-1]
    assert done.stop.kind is StopKind.MAX_TOKENS and done.generated == 7  # type: ignore[union-attr]
    assert engine.last_resumes == []


def test_mode_change_back_to_greedy_matches_the_greedy_reply(engine: LlamaServerEngine) -> None:
    """Switching sampling off at token 0 (before anything was drawn) gives exactly the greedy reply."""
    prompt = [ChatMessage("user", "Name a fruit.")]
    _, plain = run_reply(engine, prompt, GREEDY)
    live = LiveParams(replace_params(SAMPLE, max_new_tokens=GREEDY.max_new_tokens))
    live.set(replace_params(live.params, mode=SamplingMode.GREEDY, repeat_penalty=1.0))
    _, done = run_reply(engine, prompt, live=live)
    assert done.token_ids == plain.token_ids


def test_raw_text_completion_continues_the_text_without_a_template(engine: LlamaServerEngine) -> None:
    text = "The capital of France is"
    events = list(
        engine.stream_reply([ChatMessage("user", text)], LiveParams(GREEDY), threading.Event(), raw=True)
    )
    done = events[-1]
    assert isinstance(done, ReplyDone) and done.stop.kind in (StopKind.EOS, StopKind.MAX_TOKENS)
    assert done.prompt_tokens == len(engine.tokenize(text, add_special=True))  # no template around it
    assert done.generated > 0
