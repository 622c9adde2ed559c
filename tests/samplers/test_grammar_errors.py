"""Grammar errors on the real model: llama.cpp's parser's line and column, a JSON schema the converter
can't handle, a bias outside the vocabulary, a grammar that allows nothing at some step; the same
messages from the engine's check, the reply's stop reason, and ``generate`` (stderr, exit 2)."""

from __future__ import annotations

import io
import math
import threading
from pathlib import Path

import pytest

from settings import Settings
from settings.sampling import SamplingParams
from tests.engine.engine_helpers import run_reply, user
from tui.engine.chain import is_dead_end
from tui.engine.events import ReplyDone, StopKind, TokenEvent
from tui.engine.live import LiveParams
from tui.engine.llama_engine import LlamaEngine
from tui.headless import EXIT_USAGE, run_generate

pytestmark = pytest.mark.real_model

BAD_GBNF = 'root ::= "a"\nb ::= ( "c" \n'
BAD_GBNF_SAYS = "grammar error (line 2, column 12): expecting ')'"
BAD_SCHEMA = '{"$ref": "https://example.invalid/schema.json"}'
DEAD_END = 'root ::= "Hi" [^\\x00-\\U0010FFFF]'
"""Allows "Hi", then a character from an empty set: nothing."""


def test_the_engines_check_says_what_and_where(
    engine: LlamaEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    assert engine.params_problem(SamplingParams(grammar=BAD_GBNF)) == ("grammar", BAD_GBNF_SAYS)
    field, message = engine.params_problem(SamplingParams(json_schema=BAD_SCHEMA)) or ("", "")
    assert field == "json_schema" and message.startswith("The JSON schema cannot be turned into a grammar")
    outside = engine.info.n_vocab + 3
    assert engine.params_problem(SamplingParams(logit_bias={outside: 1.0})) == (
        "logit_bias",
        f"the logit bias names token {outside}, but this model's vocabulary has {engine.info.n_vocab} "
        f"tokens (ids 0-{engine.info.n_vocab - 1})",
    )
    assert engine.params_problem(SamplingParams(grammar='root ::= "yes" | "no"')) is None
    assert engine.params_problem(SamplingParams(grammar=DEAD_END)) is None  # it parses: it ends at run time
    # llama.cpp's parser wrote to C's stderr, caught there: nothing reached file descriptor 2
    assert "error parsing grammar" not in capfd.readouterr().err


def test_a_bad_grammar_ends_the_reply_before_its_first_token(engine: LlamaEngine) -> None:
    _, tokens, done = run_reply(engine, user("Hi"), SamplingParams(grammar=BAD_GBNF, seed=1))
    assert not tokens and done.stop.kind is StopKind.ERROR
    assert done.stop.message == f"{BAD_GBNF_SAYS}. Fix the grammar (panel: Constraints)."


def test_a_grammar_that_allows_nothing_ends_the_reply_with_a_clear_reason(engine: LlamaEngine) -> None:
    _, tokens, done = run_reply(
        engine, user("Say hi"), SamplingParams(grammar=DEAD_END, seed=3, max_new_tokens=20)
    )
    assert "".join(t.text for t in tokens) == "Hi" and done.text == "Hi"  # the text so far is kept
    assert done.stop.kind is StopKind.ERROR and is_dead_end(done.stop.message)
    assert done.stop.label() == (
        "error: The grammar allows no token at this point of the reply: the reply ends here. "
        "Check the grammar (panel: Constraints)."
    )


def test_a_ban_of_everything_the_grammar_allows_says_so(engine: LlamaEngine) -> None:
    x = engine.tokenize("x")
    params = SamplingParams(grammar='root ::= "x"', logit_bias={x[0]: -math.inf}, seed=1)
    _, tokens, done = run_reply(engine, user("Hi"), params)
    assert not tokens and done.stop.message is not None
    assert "(or the logit bias bans every token it allows)" in done.stop.message


@pytest.mark.parametrize(
    ("sampling", "says"),
    [
        ({"grammar": BAD_GBNF}, f"tokendial: bad setting sampling.grammar: {BAD_GBNF_SAYS}\n"),
        ({"json_schema": BAD_SCHEMA}, "tokendial: bad setting sampling.json_schema: The JSON schema cannot"),
        (
            {"logit_bias": {10**6: -1.0}},
            "tokendial: bad setting sampling.logit_bias: the logit bias names token 1000000",
        ),
    ],
)
def test_generate_says_it_on_stderr_with_exit_status_2(
    model_path: Path, tmp_path: Path, sampling: dict[str, object], says: str
) -> None:
    settings = Settings(
        model_path=model_path, n_ctx=512, n_threads=1, data_dir=tmp_path, sampling=SamplingParams(**sampling)
    )
    out, err = io.StringIO(), io.StringIO()
    assert run_generate(settings, "Hi", False, stdout=out, stderr=err) == EXIT_USAGE
    assert err.getvalue().startswith(says) and out.getvalue() == ""
    assert err.getvalue().count("\n") == 1  # one line


def test_generate_prints_the_reply_then_the_dead_end_with_exit_status_2(
    model_path: Path, tmp_path: Path
) -> None:
    sampling = SamplingParams(grammar=DEAD_END, seed=3, max_new_tokens=20)
    settings = Settings(model_path=model_path, n_ctx=512, n_threads=1, data_dir=tmp_path, sampling=sampling)
    out, err = io.StringIO(), io.StringIO()
    assert run_generate(settings, "Say hi", False, stdout=out, stderr=err) == EXIT_USAGE
    assert out.getvalue() == "Hi\n"
    assert (
        "[error: The grammar allows no token at this point of the reply: the reply ends here."
        in err.getvalue()
    )


def test_a_grammar_the_reply_so_far_does_not_match_ends_it_there(engine: LlamaEngine) -> None:
    """Applied mid-reply (the panel refuses only grammars that don't parse): the text is kept, the
    stop reason says why, and the live parameters keep the grammar for the next reply."""
    live = LiveParams(SamplingParams(seed=4, max_new_tokens=30))
    texts: list[str] = []
    done = None
    for event in engine.stream_reply(user("Tell me about cats."), live, threading.Event()):
        if isinstance(event, TokenEvent):
            texts.append(event.text)
            if len(texts) == 3:
                live.set(live.params.model_copy(update={"grammar": 'root ::= "0123456789"'}))
        elif isinstance(event, ReplyDone):
            done = event
    assert done is not None and done.stop.kind is StopKind.ERROR and len(texts) == 3
    assert done.text == "".join(texts) and is_dead_end(done.stop.message)
    assert (done.stop.message or "").startswith("The reply so far does not match the new grammar (token ")
    assert (done.stop.message or "").endswith("the reply ends here; the grammar applies to the next reply.")
