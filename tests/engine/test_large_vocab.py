"""A 262k-token vocabulary built offline from the default model (tests/large_vocab.py) loads and replies."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest

from settings.sampling import SamplingMode, SamplingParams
from tests.large_vocab import LARGE_VOCAB, build_large_vocab_model
from tui.engine.events import ChatMessage, ReplyDone, StopKind, TokenEvent
from tui.engine.live import LiveParams
from tui.engine.llama_engine import load_engine
from tui.engine.protocol import LoadConfig

pytestmark = pytest.mark.real_model


def test_the_padded_model_loads_and_replies(model_path: Path) -> None:
    large = build_large_vocab_model(model_path)
    assert build_large_vocab_model(model_path) == large  # kept while newer than the source
    engine = load_engine(LoadConfig(model_path=large, n_ctx=256, n_threads=2, top_n=10))
    try:
        assert engine.info.n_vocab == LARGE_VOCAB
        params = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0, max_new_tokens=4)
        ask = [ChatMessage("user", "What is the capital of France?")]
        events = list(engine.stream_reply(ask, LiveParams(params), threading.Event()))
    finally:
        engine.close()
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    done = events[-1]
    assert isinstance(done, ReplyDone) and done.stop.kind in (StopKind.MAX_TOKENS, StopKind.EOS)
    assert tokens and all(len(e.candidates) == 10 and math.isfinite(e.entropy) for e in tokens)
    assert all(e.candidates[0].token_id == e.token_id for e in tokens)  # greedy: the arg-max
