"""The batched decoder on the real default model: one prompt, several columns, one llama_decode per step."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pytest

from settings.sampling import SamplingMode, SamplingParams
from tui.engine.batch import (
    BatchDecoder,
    ColumnDone,
    ColumnToken,
    CompareDoesNotFit,
    CompareDone,
    CompareEvent,
    CompareStarted,
)
from tui.engine.events import ChatMessage, PromptProgress, ReplyDone, StopKind
from tui.engine.live import LiveParams
from tui.engine.llama_engine import LlamaEngine

pytestmark = pytest.mark.real_model

MESSAGES = [ChatMessage("user", "Write one sentence about the sea.")]
GREEDY = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0)


def run(
    engine: LlamaEngine,
    sets: Sequence[SamplingParams],
    *,
    messages: Sequence[ChatMessage] = MESSAGES,
    on_event: Callable[[CompareEvent, threading.Event, list[threading.Event]], None] | None = None,
    decoder: BatchDecoder | None = None,
) -> tuple[list[CompareEvent], CompareDone]:
    """Run a compare to the end; ``on_event`` may set the cancel or a column's stop event."""
    decoder = decoder or BatchDecoder(engine)
    cancel = threading.Event()
    stops = [threading.Event() for _ in sets]
    events: list[CompareEvent] = []
    for event in decoder.stream_compare(messages, [LiveParams(p) for p in sets], cancel, stops):
        events.append(event)
        if on_event is not None:
            on_event(event, cancel, stops)
    last = events[-1]
    assert isinstance(last, CompareDone)
    assert sum(isinstance(e, CompareDone) for e in events) == 1
    return events, last


def tokens_of(events: Sequence[CompareEvent], column: int) -> list[int]:
    return [e.token.token_id for e in events if isinstance(e, ColumnToken) and e.column == column]


def test_the_shared_prompt_is_evaluated_once(engine: LlamaEngine) -> None:
    decoder = BatchDecoder(engine)
    sets = [GREEDY.model_copy(update={"max_new_tokens": n}) for n in (6, 9, 12)]
    events, done = run(engine, sets, decoder=decoder)
    prompt = len(engine.format_prompt(MESSAGES))
    started = next(e for e in events if isinstance(e, CompareStarted))
    assert started.prompt_tokens == started.prompt_evaluated == prompt
    assert done.prompt_evaluated == prompt
    assert all(d.prompt_evaluated == prompt for d in done.dones)
    # llama.cpp's own counters: the prompt once, then one token per running column per step
    assert decoder.llama_evaluated == prompt + done.decoded
    assert decoder.llama_evaluated < 3 * prompt
    assert [d.generated for d in done.dones] == [6, 9, 12]
    # a column's last token (the one that hit its cap) is never evaluated
    assert done.decoded == 5 + 8 + 11
    assert done.steps == 11  # one llama_decode per step, however many columns run
    assert decoder.kv_cells % 256 == 0 and decoder.kv_cells >= prompt + 6 + 9 + 12


def test_each_column_stops_for_its_own_reason(engine: LlamaEngine) -> None:
    messages = [ChatMessage("user", "Say hello.")]
    sets = [
        GREEDY.model_copy(update={"max_new_tokens": 200}),
        GREEDY.model_copy(update={"max_new_tokens": 4}),
        GREEDY.model_copy(update={"max_new_tokens": 200, "stop": ("!", ".", ",")}),
    ]
    events, done = run(engine, sets, messages=messages)
    kinds = [d.stop.kind for d in done.dones]
    assert kinds == [StopKind.EOS, StopKind.MAX_TOKENS, StopKind.STOP_STRING], [d.stop for d in done.dones]
    assert done.dones[1].stop.limit == 4 and done.dones[1].generated == 4
    assert done.dones[0].stop.token_text == "<|im_end|>"
    column_dones = [e for e in events if isinstance(e, ColumnDone)]
    assert sorted(e.column for e in column_dones) == [0, 1, 2]
    # the columns that stopped early left the batch while the EOS column went on
    assert column_dones[-1].column == 0
    for early in column_dones[:2]:
        after = events.index(early)
        assert any(isinstance(e, ColumnToken) and e.column == 0 for e in events[after:])
        assert not any(isinstance(e, ColumnToken) and e.column == early.column for e in events[after:])
    assert not done.dones[2].text.endswith(("!", ".", ","))


def test_seeds_are_per_column_and_reproducible(engine: LlamaEngine) -> None:
    hot = SamplingParams(temperature=1.5, top_k=0, top_p=1.0, min_p=0.0, max_new_tokens=16)
    sets = [hot.model_copy(update={"seed": s}) for s in (11, 22, 11)]
    events, done = run(engine, sets)
    first = [tokens_of(events, c) for c in range(3)]
    assert [d.seed for d in done.dones] == [11, 22, 11]
    assert first[0] != first[1]  # another seed, another draw
    again_events, _ = run(engine, sets)
    assert [tokens_of(again_events, c) for c in range(3)] == first  # reproducible across runs
    if len(first[0]) == len(first[2]):  # same history and seed in one batch: the same draws
        assert first[0] == first[2]


def test_a_column_stopped_alone_leaves_the_batch(engine: LlamaEngine) -> None:
    sets = [GREEDY.model_copy(update={"max_new_tokens": 20})] * 2

    def stop_column_1(event: CompareEvent, cancel: threading.Event, stops: list[threading.Event]) -> None:
        if isinstance(event, ColumnToken) and event.column == 1 and event.token.index == 2:
            stops[1].set()

    _, done = run(engine, sets, on_event=stop_column_1)
    assert done.dones[1].stop.kind is StopKind.CANCELLED
    assert done.dones[1].generated == 3
    assert done.dones[0].stop.kind is StopKind.MAX_TOKENS and done.dones[0].generated == 20
    assert done.steps == 19
    assert done.decoded == 19 + 2  # column 1 was in the batch for two steps only


def test_cancel_during_the_shared_prompt(engine: LlamaEngine) -> None:
    long_prompt = [ChatMessage("user", "Tell me about rivers. " * 60)]
    decoder = BatchDecoder(engine, prompt_batch=32)

    def cancel_at_first_progress(
        event: CompareEvent, cancel: threading.Event, _: list[threading.Event]
    ) -> None:
        if isinstance(event, PromptProgress):
            cancel.set()

    events, done = run(
        engine,
        [GREEDY.model_copy(update={"max_new_tokens": 50})] * 3,
        messages=long_prompt,
        on_event=cancel_at_first_progress,
        decoder=decoder,
    )
    assert [d.stop.kind for d in done.dones] == [StopKind.CANCELLED] * 3
    assert all(d.generated == 0 for d in done.dones)
    assert done.prompt_evaluated == 32 < done.prompt_tokens
    assert not any(isinstance(e, CompareStarted | ColumnToken) for e in events)
    assert decoder.llama_evaluated == 32 + 1  # llama_perf_context reports n_eval as at least 1


def test_cancel_stops_every_column(engine: LlamaEngine) -> None:
    sets = [GREEDY.model_copy(update={"max_new_tokens": 50})] * 3

    def cancel_at_5(event: CompareEvent, cancel: threading.Event, _: list[threading.Event]) -> None:
        if isinstance(event, ColumnToken) and event.token.index == 4:
            cancel.set()

    _, done = run(engine, sets, on_event=cancel_at_5)
    assert [d.stop.kind for d in done.dones] == [StopKind.CANCELLED] * 3
    assert all(d.generated <= 6 for d in done.dones)


def test_columns_that_do_not_fit_are_refused_with_what_fits(engine: LlamaEngine) -> None:
    decoder = BatchDecoder(engine)
    sets = [GREEDY.model_copy(update={"max_new_tokens": 400})] * 3
    with pytest.raises(CompareDoesNotFit) as caught:
        decoder.check(MESSAGES, sets)
    message = caught.value.message
    assert "2 columns fit" in message and "(n_ctx)" in message and "1024" in message
    events, done = run(engine, sets, decoder=decoder)
    assert [d.stop.kind for d in done.dones] == [StopKind.ERROR] * 3
    assert done.dones[0].stop.message == message
    assert done.refused == message and done.steps == 0 and done.prompt_evaluated == 0
    assert events == [done]  # nothing started: no prompt, no column events


def test_completion_mode_continues_the_text_without_a_template(engine: LlamaEngine) -> None:
    text = "The lighthouse keeper opened the bottle and read"
    messages = [ChatMessage("system", "ignored in completion mode"), ChatMessage("user", text)]
    decoder = BatchDecoder(engine)
    raw_prompt = engine._llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
    assert decoder.prompt(messages, raw=True) == raw_prompt
    assert len(decoder.prompt(messages)) > len(raw_prompt)  # the chat template adds its tokens
    sets = [GREEDY.model_copy(update={"max_new_tokens": 5}), SamplingParams(seed=3, max_new_tokens=5)]
    lives = [LiveParams(p) for p in sets]
    events = list(decoder.stream_compare(messages, lives, threading.Event(), raw=True))
    done = events[-1]
    assert isinstance(done, CompareDone) and done.refused is None
    assert done.prompt_tokens == len(raw_prompt) and done.prompt_evaluated == len(raw_prompt)
    assert [d.stop.kind for d in done.dones] == [StopKind.MAX_TOKENS] * 2
    # the greedy column starts as the engine's own completion of the text (the first token's logits
    # come from the same single-token decode of the prompt's last token; later ones may differ by
    # batch shape, see the README)
    alone = list(engine.stream_reply(messages, LiveParams(sets[0]), threading.Event(), raw=True))[-1]
    assert isinstance(alone, ReplyDone) and alone.stop.kind is StopKind.MAX_TOKENS
    assert done.dones[0].token_ids[0] == alone.token_ids[0]


def test_live_params_are_read_per_column_each_step(engine: LlamaEngine) -> None:
    lives = [LiveParams(GREEDY.model_copy(update={"max_new_tokens": 30})) for _ in range(2)]
    decoder = BatchDecoder(engine)
    done = None
    for event in decoder.stream_compare(MESSAGES, lives, threading.Event()):
        if isinstance(event, ColumnToken) and event.column == 1 and event.token.index == 3:
            lives[1].set(lives[1].params.model_copy(update={"max_new_tokens": 6}))
        if isinstance(event, CompareDone):
            done = event
    assert done is not None
    assert done.dones[0].generated > 6  # the other column kept its own cap (30) or ended on EOS
    assert done.dones[1].generated == 6 and done.dones[1].stop.limit == 6
    assert sorted(done.dones[1].params) == [0, 1]
