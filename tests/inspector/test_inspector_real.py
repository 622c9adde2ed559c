"""The inspector on the real model: every number against a full-vocabulary reference; a real branch."""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from textual.pilot import Pilot

from settings.config import Settings
from settings.sampling import SamplingMode, SamplingParams
from tests.inspector.inspector_helpers import SIZE, wait_for
from tests.inspector.inspector_reference import reference
from tui.app import TokendialApp
from tui.engine.events import ChatMessage, ReplyDone, TokenEvent
from tui.engine.live import LiveParams
from tui.engine.llama_engine import LlamaEngine, load_engine
from tui.engine.protocol import LoadConfig
from tui.engine.whatif import WhatIfParams, actual_step, outside_candidate, repeat_penalty_ids, what_if
from tui.widgets.chat_view import AssistantMessage

pytestmark = pytest.mark.real_model

SAMPLED = SamplingParams(
    temperature=0.7, top_k=5, top_p=0.9, min_p=0.05, repeat_penalty=1.0, seed=11, max_new_tokens=10
)
PENALISED = SamplingParams(
    temperature=0.9, top_k=0, top_p=0.9, min_p=0.02, repeat_penalty=1.3, repeat_last_n=64, seed=4,
    max_new_tokens=24,
)  # fmt: skip
WHAT_IFS = [
    WhatIfParams(1.3, 0, 0.6, 0.0),
    WhatIfParams(0.5, 3, 1.0, 0.0),
    WhatIfParams(1.0, 8, 0.95, 0.1),
    WhatIfParams(2.0, 0, 1.0, 0.3),
    WhatIfParams(0.8, 40, 0.95, 0.05),
]
TOL = 2e-6
"""The engine computes the log-normaliser with float32 exponentials: agreement to ~1e-6."""


@pytest.fixture(scope="module")
def engine(model_path: Path) -> Iterator[LlamaEngine]:
    """The real model with 10 candidates per token."""
    loaded = load_engine(LoadConfig(model_path=model_path, n_ctx=512, n_threads=2, top_n=10))
    yield loaded
    loaded.close()


def _run_capturing_logits(
    engine: LlamaEngine, params: SamplingParams
) -> tuple[list[TokenEvent], list[np.ndarray]]:
    """One sampled reply, with a copy of the full logits the engine read before each token."""
    captured: list[np.ndarray] = []
    original = engine._logits

    def capture() -> np.ndarray:
        logits = original()
        captured.append(np.array(logits, dtype=np.float64))
        return logits

    engine._logits = capture  # type: ignore[method-assign]
    try:
        messages = [ChatMessage("user", "Name three fruits and say why you like them.")]
        events = list(engine.stream_reply(messages, LiveParams(params), threading.Event()))
    finally:
        del engine._logits
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    assert isinstance(events[-1], ReplyDone) and len(tokens) >= 5
    return tokens, captured


@pytest.mark.parametrize("params", [SAMPLED, PENALISED], ids=["no_penalty", "repeat_penalty"])
def test_every_number_matches_a_full_vocabulary_reference(
    engine: LlamaEngine, params: SamplingParams
) -> None:
    tokens, captured = _run_capturing_logits(engine, params)
    exact_what_ifs = same_exact = 0
    for event in tokens:
        logits = captured[event.index].tolist()
        # The repeat penalty's history is the reply so far (as the engine keeps it).
        penalized = repeat_penalty_ids([e.token_id for e in tokens[: event.index]], params.repeat_last_n)
        ref = reference(
            logits, top_k=params.top_k, top_p=params.top_p, min_p=params.min_p,
            temperature=params.temperature, penalized=penalized, repeat_penalty=params.repeat_penalty,
        )  # fmt: skip
        step = actual_step(event, params, penalized)
        # The candidates are the true top 10; p at T=1, cumulative and entropy are exact.
        assert [r.token_id for r in step.top] == ref.order[:10]
        for row in step.top:
            assert row.p_raw == pytest.approx(ref.p_raw[row.token_id], abs=TOL)
            assert row.cum_raw == pytest.approx(ref.cum_raw[row.token_id], abs=TOL)
            # What the engine says the samplers did (shown as it happened) is what they did.
            assert row.p_final == pytest.approx(ref.p_final[row.token_id], abs=1e-6)
            assert (row.cut_by.value if row.cut_by else None) == ref.cut_by[row.token_id]
        assert event.entropy == pytest.approx(ref.entropy_bits, abs=1e-4)
        assert step.coverage == pytest.approx(ref.cum_raw[ref.order[9]], abs=TOL)  # "top 10 hold ..."
        assert event.p_raw == pytest.approx(ref.p_raw[event.token_id], abs=TOL)
        assert event.p_final == pytest.approx(ref.p_final[event.token_id], abs=1e-6)
        assert ref.cut_by[event.token_id] is None  # the drawn token survived the samplers
        # The what-if with the parameters in force reproduces the engine's numbers when exact.
        outside = outside_candidate(event)
        same = what_if(
            event.candidates, WhatIfParams.of(params), event.token_id, penalized=penalized, outside=outside
        )
        if same.exact:
            same_exact += 1
            assert [r.p_final for r in same.rows] == pytest.approx([r.p_final for r in step.rows], abs=1e-6)
            assert [r.cut_by for r in same.rows] == [r.cut_by for r in step.rows]
        for row in same.rows:
            if row.cut_by is not None and not row.uncertain:
                assert ref.cut_by[row.token_id] is not None
        # Other what-ifs: exact ones match the reference; inexact ones never show a kept token as cut.
        for base in WHAT_IFS:
            whatif = dataclasses.replace(base, repeat_penalty=params.repeat_penalty)
            other = what_if(event.candidates, whatif, event.token_id, penalized=penalized, outside=outside)
            ref_other = reference(
                logits, top_k=whatif.top_k, top_p=whatif.top_p, min_p=whatif.min_p,
                temperature=whatif.temperature, penalized=penalized, repeat_penalty=whatif.repeat_penalty,
            )  # fmt: skip
            shown = {r.token_id for r in other.rows}
            beyond = any(ref_other.cut_by[i] is None for i in ref_other.order[10:] if i not in shown)
            if other.exact:
                exact_what_ifs += 1
                assert not beyond
                for row in other.rows:
                    assert row.p_final == pytest.approx(ref_other.p_final[row.token_id], abs=1e-9)
                    assert (row.cut_by is None) == (ref_other.cut_by[row.token_id] is None)
                    if not row.uncertain:
                        assert (row.cut_by.value if row.cut_by else None) == ref_other.cut_by[row.token_id]
                entropy = -sum(p * math.log2(p) for p in ref_other.p_final.values() if p > 0)
                assert other.draw_entropy_bits == pytest.approx(entropy, abs=1e-7)
            for row in other.rows:
                if row.cut_by is not None and not row.uncertain:
                    assert ref_other.cut_by[row.token_id] is not None  # a sure cut is a real cut
    assert exact_what_ifs >= len(tokens)  # top-k 3 and 8 are exact unless penalties reorder
    # Without penalties top-k 5 keeps the survivors among the candidates: always exact. With
    # them, exactness depends on the step (penalised tokens past the top 10 are unseen).
    assert same_exact == len(tokens) if params.repeat_penalty == 1.0 else same_exact >= 1


async def _wait(pilot: Pilot[int], app: TokendialApp, what: str) -> None:
    await wait_for(pilot, lambda: not app.busy and all(r.finished for r in app.records.values()), what, 6000)
    await pilot.pause()


async def test_branch_on_the_real_model_rewinds_the_kv_cache_and_keeps_the_sibling(
    tmp_path: Path, model_path: Path
) -> None:
    greedy = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0, max_new_tokens=16)
    settings = Settings(model_path=model_path, data_dir=tmp_path / "data", n_ctx=512, n_threads=2,
                        sampling=greedy)  # fmt: skip
    app = TokendialApp(settings, config_path=tmp_path / "config.toml")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state.value == "ready", "model loaded", 6000)
        app.prompt.text = "Write one sentence about the sea."
        app.prompt.focus()
        await pilot.press("enter")
        await _wait(pilot, app, "first reply")
        original = app.token_view.record
        assert original is not None and original.done is not None and len(original.events) >= 6
        at = 4
        event = original.events[at]
        alternative = next(c for c in event.candidates if c.token_id != event.token_id and c.text.strip())
        assert await app.branch(original.reply_id, at, alternative.token_id)
        await _wait(pilot, app, "branch reply")
        branch = app.token_view.record
        assert branch is not None and branch is not original and branch.done is not None
        done, first = branch.done, original.done
        # The KV cache was rewound to the branch point: the prompt and the 4 shared tokens were
        # reused, only the alternative token was evaluated (not prompt + 5 from scratch).
        assert done.prompt_tokens == first.prompt_tokens
        assert done.prompt_evaluated == 1
        assert done.token_ids[:at] == first.token_ids[:at]
        assert done.token_ids[at] == alternative.token_id
        assert done.text.startswith("".join(e.text for e in original.events[:at]))
        assert [e.index for e in branch.events] == list(range(len(branch.events)))
        # The greedy continuation after a different token is a different reply.
        assert done.token_ids != first.token_ids
        # The old continuation is kept as a sibling; [ shows it again, ] the branch.
        siblings = app.branches.set_of(branch.reply_id)
        assert siblings is not None and [r.reply_id for r in siblings.records] == [
            original.reply_id, branch.reply_id,
        ]  # fmt: skip
        app.token_view.focus()
        await pilot.press("left_square_bracket")
        await pilot.pause()
        assert app.chat_view.query(AssistantMessage).last().record is original
        assert app.history[-1].content == first.text
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert app.history[-1].content == done.text
