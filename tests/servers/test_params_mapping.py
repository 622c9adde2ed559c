"""How SamplingParams reach a server: every field mapped, the local chain's order, greedy as arg-max."""

from __future__ import annotations

from settings.sampling import SamplingMode, SamplingParams
from tui.engine.backends.params import (
    CLIENT_SIDE_FIELDS,
    LLAMA_SERVER_FIELDS,
    llama_server_sampling,
    openai_sampling,
    unmapped_fields,
)


def test_every_sampling_field_is_mapped_or_handled_here() -> None:
    names = set(SamplingParams.model_fields)
    assert names <= CLIENT_SIDE_FIELDS | LLAMA_SERVER_FIELDS.keys(), (
        "a new SamplingParams field: add its line to LLAMA_SERVER_FIELDS (tui/engine/backends/params.py)"
    )
    assert unmapped_fields(SamplingParams(temperature=0.1, top_k=3)) == []


def test_sample_mode_sends_every_sampler_and_the_chain_order() -> None:
    params = SamplingParams(
        temperature=0.7, top_k=12, top_p=0.9, min_p=0.1, repeat_penalty=1.2, repeat_last_n=32, dry_last_n=64
    )
    body = llama_server_sampling(params, seed=42)
    assert body["samplers"] == [
        "penalties",
        "dry",
        "top_n_sigma",
        "top_k",
        "typ_p",
        "top_p",
        "min_p",
        "xtc",
        "temperature",
    ]
    assert (body["temperature"], body["top_k"], body["top_p"], body["min_p"]) == (0.7, 12, 0.9, 0.1)
    assert (body["repeat_penalty"], body["repeat_last_n"], body["seed"], body["min_keep"]) == (1.2, 32, 42, 1)
    assert body["dry_penalty_last_n"] == 64 and body["top_n_sigma"] == -1.0  # off in llama.cpp's terms
    banned = SamplingParams(logit_bias={5: float("-inf"), 7: 2.5}, json_schema='{"type": "object"}')
    sent = llama_server_sampling(banned, seed=1)
    assert sent["logit_bias"] == [[5, False], [7, 2.5]] and sent["json_schema"] == {"type": "object"}


def test_greedy_keeps_penalties_and_dry_then_takes_the_arg_max() -> None:
    greedy = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.3)
    body = llama_server_sampling(greedy, seed=7)
    assert body["samplers"] == ["penalties", "dry", "temperature"] and body["temperature"] == 0.0
    assert body["repeat_penalty"] == 1.3 and body["mirostat"] == 0
    assert openai_sampling(greedy, 7, extensions=True)["temperature"] == 0.0
    zero_temperature = SamplingParams(temperature=0.0)
    assert llama_server_sampling(zero_temperature, seed=7)["samplers"][-1] == "temperature"


def test_openai_extensions_can_be_left_out() -> None:
    params = SamplingParams(temperature=0.5, top_p=0.8, top_k=5)
    plain = openai_sampling(params, 1, extensions=False)
    assert plain == {
        "temperature": 0.5,
        "top_p": 0.8,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "seed": 1,
    }
    assert openai_sampling(params, 1, extensions=True)["top_k"] == 5
