"""The real engine on the real default model: stop reasons, greedy parity, seeds, live changes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from settings.sampling import SamplingMode, SamplingParams, replace_params
from tests.engine.engine_helpers import GREEDY, run_reply, user
from tui.engine.events import (
    ChatMessage,
    CutBy,
    PromptProgress,
    PromptTrimmed,
    ReplyDone,
    StopKind,
    TokenEvent,
)
from tui.engine.live import LiveParams
from tui.engine.llama_engine import LlamaEngine, load_engine
from tui.engine.protocol import LoadConfig

pytestmark = pytest.mark.real_model

FRANCE = user("What is the capital of France?")
SAMPLE = SamplingParams(
    temperature=1.0, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1, max_new_tokens=24
)


def test_model_info(engine: LlamaEngine) -> None:
    info = engine.info
    assert info.architecture == "llama"
    assert info.quantization == "Q4_1"
    assert info.size_label == "135M"
    assert info.n_ctx == 1024 and info.n_ctx_train == 8192 and info.n_vocab == 49152
    assert info.has_chat_template and info.eos_text == "<|im_end|>"
    assert info.layers_total == 31
    assert info.warnings == ()  # no GPU layers were asked for


def test_greedy_short_reply_ends_with_eos(engine: LlamaEngine) -> None:
    events, tokens, done = run_reply(engine, FRANCE)
    assert done.stop.kind is StopKind.EOS
    assert done.stop.token_text == "<|im_end|>" and done.stop.token_id == 2
    assert done.stop.label() == "end of sequence <|im_end|>"
    assert "Paris" in done.text
    assert done.text == "".join(t.text for t in tokens)
    assert [t.index for t in tokens] == list(range(len(tokens)))
    assert done.token_ids == tuple(t.token_id for t in tokens)
    assert done.stop.generated == len(tokens)
    assert any(isinstance(e, PromptProgress) for e in events)
    for t in tokens:  # greedy: the chosen token is the arg-max, the rest cut by greedy
        assert t.candidates[0].token_id == t.token_id and t.p_final == 1.0
        assert all(c.cut_by is CutBy.GREEDY and c.p_final == 0.0 for c in t.candidates[1:])
        assert t.p_raw == pytest.approx(t.candidates[0].p_raw)


def test_max_new_tokens_gives_exactly_that_many(engine: LlamaEngine) -> None:
    _, tokens, done = run_reply(engine, FRANCE, replace_params(GREEDY, max_new_tokens=5))
    assert len(tokens) == 5 and done.generated == 5
    assert done.stop.kind is StopKind.MAX_TOKENS
    assert (done.stop.limit, done.stop.generated) == (5, 5)


def test_stop_string_ends_reply_and_is_excluded(engine: LlamaEngine) -> None:
    # "of France" spans two tokens (" of", " France").
    _, tokens, done = run_reply(engine, FRANCE, replace_params(GREEDY, stop=("xyz", "of France")))
    assert done.stop.kind is StopKind.STOP_STRING and done.stop.stop_string == "of France"
    assert done.text == "The capital "
    assert "".join(t.text for t in tokens).startswith("The capital of France")


def test_cancel_in_the_loop_stops_before_the_next_token(engine: LlamaEngine) -> None:
    cancel = threading.Event()
    tokens = []
    done = None
    for event in engine.stream_reply(FRANCE, LiveParams(GREEDY), cancel):
        if isinstance(event, TokenEvent):
            tokens.append(event)
            if len(tokens) == 3:
                cancel.set()
        elif isinstance(event, ReplyDone):
            done = event
    assert done is not None and done.stop.kind is StopKind.CANCELLED
    assert len(tokens) == 3 and done.generated == 3


def test_cancel_from_another_thread(engine: LlamaEngine) -> None:
    cancel = threading.Event()
    first = threading.Event()

    def cancel_after_first_token() -> None:
        first.wait(30)
        cancel.set()

    canceller = threading.Thread(target=cancel_after_first_token)
    canceller.start()
    count_after_cancel = 0
    done = None
    story = user("Write a very long story about a dragon.")
    for event in engine.stream_reply(story, LiveParams(replace_params(GREEDY, max_new_tokens=400)), cancel):
        if isinstance(event, TokenEvent):
            first.set()
            canceller.join()  # the cancel is set now: at most this token was already on its way
            if cancel.is_set():
                count_after_cancel += 1
        elif isinstance(event, ReplyDone):
            done = event
    assert done is not None and done.stop.kind is StopKind.CANCELLED
    assert count_after_cancel == 1  # the token during which cancel was set; none after it


def test_cancel_between_prompt_batches(engine: LlamaEngine) -> None:
    long_text = "The quick brown fox jumps over the lazy dog. " * 70  # ~700 tokens: two batches
    cancel = threading.Event()
    events = []
    for event in engine.stream_reply(user(long_text), LiveParams(GREEDY), cancel):
        events.append(event)
        if isinstance(event, PromptProgress):
            cancel.set()
    progress = [e for e in events if isinstance(e, PromptProgress)]
    done = events[-1]
    assert isinstance(done, ReplyDone) and done.stop.kind is StopKind.CANCELLED
    assert len(progress) == 1 and progress[0].evaluated < progress[0].total
    assert done.generated == 0


def test_greedy_equals_llama_cpp_python_token_for_token(engine: LlamaEngine) -> None:
    messages = [ChatMessage("user", "Name three colours of the rainbow and say why the sky is blue.")]
    params = replace_params(GREEDY, max_new_tokens=48)
    _, _, done = run_reply(engine, messages, params)
    prompt = engine.format_prompt(messages)
    llm = engine._llm
    theirs: list[int] = []
    for token in llm.generate(prompt, top_k=1, temp=0.0, repeat_penalty=1.0):
        if engine._is_eog(token) or len(theirs) == 48:
            break
        theirs.append(token)
    assert list(done.token_ids) == theirs
    completion = llm.create_completion(prompt, max_tokens=48, temperature=0.0, top_k=1, repeat_penalty=1.0)
    assert completion["choices"][0]["text"] == done.text


def test_same_seed_same_reply_and_resolved_seed_is_recorded(engine: LlamaEngine) -> None:
    seeded = replace_params(SAMPLE, seed=1234)
    _, _, first = run_reply(engine, FRANCE, seeded)
    _, _, second = run_reply(engine, FRANCE, seeded)
    assert first.seed == 1234
    assert first.token_ids == second.token_ids
    _, _, other = run_reply(engine, FRANCE, replace_params(SAMPLE, seed=99))
    assert other.token_ids != first.token_ids
    _, _, fresh = run_reply(engine, FRANCE, replace_params(SAMPLE, seed=-1))
    assert fresh.seed >= 0
    _, _, replay = run_reply(engine, FRANCE, replace_params(SAMPLE, seed=fresh.seed))
    assert replay.token_ids == fresh.token_ids


def test_top_k_one_equals_greedy(engine: LlamaEngine) -> None:
    _, _, greedy = run_reply(engine, FRANCE, replace_params(GREEDY, max_new_tokens=24))
    top1 = replace_params(SAMPLE, top_k=1, repeat_penalty=1.0, temperature=1.3, seed=5)
    _, tokens, sampled = run_reply(engine, FRANCE, top1)
    assert sampled.token_ids == greedy.token_ids
    assert all(t.p_final == pytest.approx(1.0) for t in tokens)
    assert all(c.cut_by is CutBy.TOP_K for t in tokens for c in t.candidates[1:])


def test_parameter_change_mid_reply_applies_from_the_next_token(engine: LlamaEngine) -> None:
    hot = SamplingParams(temperature=1.5, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0, seed=7)
    live = LiveParams(replace_params(hot, max_new_tokens=20))
    tokens: list[TokenEvent] = []
    done = None
    story = user("Write a short poem about the sea.")
    for event in engine.stream_reply(story, live, threading.Event()):
        if isinstance(event, TokenEvent):
            tokens.append(event)
            if len(tokens) == 3:
                live.set(replace_params(live.params, mode=SamplingMode.GREEDY))
        elif isinstance(event, ReplyDone):
            done = event
    assert done is not None
    assert [t.params_version for t in tokens[:3]] == [0, 0, 0]
    assert all(t.params_version == 1 for t in tokens[3:]) and len(tokens) > 3
    assert set(done.params) == {0, 1} and done.params[1].mode is SamplingMode.GREEDY
    # Before: sampling at temperature 1.5 (nothing cut); after: arg-max only.
    assert all(c.cut_by is None for t in tokens[:3] for c in t.candidates)
    for t in tokens[3:]:
        assert t.token_id == t.candidates[0].token_id and t.p_final == 1.0


def test_lowering_max_tokens_mid_reply_stops_at_once(engine: LlamaEngine) -> None:
    live = LiveParams(replace_params(GREEDY, max_new_tokens=200))
    count = 0
    done = None
    for event in engine.stream_reply(user("Write a long story."), live, threading.Event()):
        if isinstance(event, TokenEvent):
            count += 1
            if count == 4:
                live.set(replace_params(live.params, max_new_tokens=2))
        elif isinstance(event, ReplyDone):
            done = event
    assert done is not None and done.stop.kind is StopKind.MAX_TOKENS
    assert count == 4 and done.stop.limit == 2


def test_rebuilding_the_chain_keeps_the_repeat_penalty_history(engine: LlamaEngine) -> None:
    """top_k=1 after a strong penalty is deterministic; a rebuild (new temperature) must not
    forget which tokens were already used, so the reply stays the same."""
    params = SamplingParams(temperature=1.0, top_k=1, repeat_penalty=3.0, repeat_last_n=64, max_new_tokens=30)
    story = user("List the days of the week.")
    _, _, plain = run_reply(engine, story, params)
    live = LiveParams(params)
    ids = []
    for event in engine.stream_reply(story, live, threading.Event()):
        if isinstance(event, TokenEvent):
            ids.append(event.token_id)
            live.set(replace_params(params, temperature=0.9 if len(ids) % 2 else 1.1))
    assert tuple(ids) == plain.token_ids


def test_sampled_tokens_are_reported_with_their_probability(engine: LlamaEngine) -> None:
    _, tokens, _ = run_reply(engine, FRANCE, replace_params(SAMPLE, seed=3))
    for t in tokens:
        assert t.p_final > 0.0  # the chain drew it, so it survived every filter
        assert 0.0 < t.p_raw <= 1.0 and t.entropy >= 0.0
        ranked = [c.token_id for c in t.candidates]
        assert len(ranked) == 10
        if t.token_id in ranked:
            chosen = t.candidates[ranked.index(t.token_id)]
            assert chosen.cut_by is None and chosen.p_final == pytest.approx(t.p_final)
        survivors = [c.p_final for c in t.candidates if c.cut_by is None]
        assert all(c.p_final == 0.0 for c in t.candidates if c.cut_by is not None)
        assert sum(survivors) <= 1.0 + 1e-6  # llama.cpp's probabilities are float32-rounded


def test_utf8_split_across_tokens_is_reassembled(engine: LlamaEngine) -> None:
    _, tokens, done = run_reply(engine, user("Repeat exactly: 🎉🎉 日本語"))
    assert "🎉🎉" in done.text and "日本語" in done.text
    assert "\ufffd" not in done.text
    assert "".join(t.text for t in tokens) == done.text
    assert any(t.text == "" for t in tokens)  # a token holding only part of a character
    assert any("\ufffd" in t.piece for t in tokens)  # its own bytes shown as a placeholder


def test_utf8_incremental_decoding_of_byte_tokens(engine: LlamaEngine) -> None:
    import codecs

    text = "🎉 日本語 café ÿ"
    ids = engine.tokenize(text)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    parts = [decoder.decode(engine._token_bytes(t)) for t in ids]
    assert "".join(parts) == text
    assert "" in parts


def test_prefix_reuse_evaluates_only_the_new_tokens(engine: LlamaEngine) -> None:
    first_turn = user("What is the capital of France?")
    _, _, first = run_reply(engine, first_turn)
    first_prompt = engine.format_prompt(first_turn)
    second_turn = [*first_turn, ChatMessage("assistant", first.text), ChatMessage("user", "And of Italy?")]
    _, _, second = run_reply(engine, second_turn)
    assert second.prompt_tokens == len(engine.format_prompt(second_turn))
    assert second.prompt_evaluated <= second.prompt_tokens - len(first_prompt) - len(first.token_ids) + 2
    assert second.stop.kind is StopKind.EOS
    _, _, again = run_reply(engine, second_turn)  # the very same prompt: only its last token
    assert again.prompt_evaluated == 1
    assert again.token_ids == second.token_ids


def test_branch_from_an_alternative_reuses_the_cache(engine: LlamaEngine) -> None:
    _, tokens, done = run_reply(engine, FRANCE)
    alternative = tokens[2].candidates[1].token_id
    fixed = [*done.token_ids[:2], alternative]
    _, branch_tokens, branch = run_reply(engine, FRANCE, continue_from=fixed)
    assert branch.prompt_evaluated == 1  # only the alternative token; the rest came from the cache
    assert branch_tokens[0].index == 3
    assert branch.token_ids[:3] == tuple(fixed)
    prefix_text = "".join(t.text for t in tokens[:2]) + engine.token_text(alternative)
    assert branch.text.startswith(prefix_text)


def test_over_long_message_ends_with_a_clear_error(engine: LlamaEngine) -> None:
    _, tokens, done = run_reply(engine, user("word " * 1500))
    assert tokens == [] and done.stop.kind is StopKind.ERROR
    assert done.stop.message is not None and "too long for the context" in done.stop.message
    assert "1024" in done.stop.message


def test_over_long_conversation_drops_oldest_turns_keeping_the_system_prompt(engine: LlamaEngine) -> None:
    filler = "Tell me about the history of bread baking in great detail please. " * 20  # ~260 tokens
    conversation = [ChatMessage("system", "You are terse.")]
    for i in range(4):
        conversation += [ChatMessage("user", f"{i}: {filler}"), ChatMessage("assistant", "Sure.")]
    conversation.append(ChatMessage("user", "Say hi."))
    events, _, done = run_reply(engine, conversation, replace_params(GREEDY, max_new_tokens=8))
    trimmed = [e for e in events if isinstance(e, PromptTrimmed)]
    assert len(trimmed) == 1 and trimmed[0].dropped_messages % 2 == 0 and trimmed[0].dropped_messages >= 2
    assert trimmed[0].prompt_tokens == done.prompt_tokens <= engine.n_ctx
    assert done.stop.kind in (StopKind.EOS, StopKind.MAX_TOKENS)


def test_tiny_context_fills(model_path: Path) -> None:
    small = load_engine(LoadConfig(model_path=model_path, n_ctx=256, n_threads=1))
    try:
        story = user("Write a very long story about a dragon. " * 15)
        _, tokens, done = run_reply(small, story, replace_params(GREEDY, max_new_tokens=1000))
        assert done.stop.kind is StopKind.CONTEXT_FULL and done.stop.limit == 256
        # Every context slot is used: the prompt plus the evaluated reply tokens (the last
        # token was sampled from the final position and needs no slot of its own).
        assert done.prompt_tokens + len(tokens) - 1 == 256
        assert done.stop.label() == "context full (256 tokens)"
    finally:
        small.close()


def test_candidate_capture_can_be_switched_off(engine: LlamaEngine) -> None:
    engine.top_n = 0
    try:
        _, tokens, done = run_reply(engine, FRANCE)
    finally:
        engine.top_n = 10
    assert done.stop.kind is StopKind.EOS and "Paris" in done.text
    assert all(t.candidates == () for t in tokens)


def test_chain_fed_the_pool_draws_like_the_chain_fed_everything(engine: LlamaEngine) -> None:
    """The engine feeds a top-k chain only the pool that can survive; same draws as llama.cpp's
    own llama_sampler_sample over the whole vocabulary, draw after draw (same seed)."""
    import llama_cpp

    from tests.engine.test_chain_exact import SEED, reference_chain
    from tui.engine.chain import SamplerChain, chain_specs
    from tui.engine.sampling_math import chain_pool

    history = engine.tokenize(" the sea, the sea and the waves of the sea")
    run_reply(engine, FRANCE, replace_params(GREEDY, max_new_tokens=1))
    logits = engine._logits()
    for top_k, penalty in ((40, 1.1), (3, 1.5), (100, 1.0)):
        params = SamplingParams(temperature=1.4, top_k=top_k, top_p=0.97, min_p=0.01, repeat_penalty=penalty)
        ours = SamplerChain(llama_cpp, engine._vocab, engine._n_vocab, engine.n_ctx)
        ours.update(chain_specs(params, seed=SEED, n_ctx=engine.n_ctx), history)
        assert ours.pool_allowed()
        theirs = reference_chain(engine, params, history)
        seen = list(history)
        drawn = []
        for _ in range(100):  # the pool follows the penalty history, as in the engine's loop
            pool = chain_pool(logits, top_k=top_k, history=seen, repeat_penalty=penalty, repeat_last_n=64)
            assert pool is not None and pool.shape[0] < 300
            step = ours.run(logits, pool, None)
            ours.accept(step.token)
            drawn.append((step.token, step.p))
            seen.append(step.token)
        reference = [llama_cpp.llama_sampler_sample(theirs, engine._llm.ctx, -1) for _ in range(100)]
        ours.close()
        llama_cpp.llama_sampler_free(theirs)
        assert [token for token, _ in drawn] == reference
        assert len(set(reference)) > 1  # the test would notice a different draw
        assert all(0.0 < p <= 1.0 for _, p in drawn)
