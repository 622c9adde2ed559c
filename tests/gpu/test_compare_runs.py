"""compare_runs.py on runs written in the real `tokendial generate --json` format (no GPU needed)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tests.fakes import fake_model_info
from tests.gpu.compare_runs import summarize
from tui.engine.events import (
    Candidate,
    ModelInfo,
    ReplyDone,
    StopKind,
    StopReason,
    TokenEvent,
)
from tui.headless import event_record


def _info(offloaded: int) -> ModelInfo:
    return fake_model_info(gpu_layers=offloaded or None)


def _write_run(
    runs: Path, label: str, tokens: Sequence[int], stop: StopKind, offloaded: int, decode_ms: float
) -> None:
    info = _info(offloaded)
    lines = []
    for index, token in enumerate(tokens):
        candidates = (
            Candidate(token, f"t{token}", 10.0, 0.6, 1.0, None),
            Candidate(token + 1, f"t{token + 1}", 9.75, 0.4, 0.0, None),
        )
        event = TokenEvent(index, token, f"t{token}", f"t{token}", 0.6, 1.0, candidates, 1.0, 0, 1.0)
        lines.append(event_record(event, info))
    done = ReplyDone(
        stop=StopReason(
            stop, generated=len(tokens), limit=len(tokens) if stop is StopKind.MAX_TOKENS else None
        ),
        text="",
        token_ids=tuple(tokens),
        prompt_tokens=5,
        prompt_evaluated=5,
        prompt_ms=1.0,
        first_token_ms=1.0,
        decode_ms=decode_ms,
        seed=42,
    )
    lines.append(event_record(done, info))
    (runs / f"{label}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_identical_runs_and_their_figures(tmp_path: Path) -> None:
    _write_run(tmp_path, "m_short_gpu_1", [5, 6, 7], StopKind.EOS, offloaded=9, decode_ms=4.0)
    _write_run(tmp_path, "m_short_gpu_2", [5, 6, 7], StopKind.EOS, offloaded=9, decode_ms=2.0)
    _write_run(tmp_path, "m_short_cpu_1", [5, 6, 7], StopKind.EOS, offloaded=0, decode_ms=40.0)
    summary = summarize(tmp_path)
    model = summary["models"]["m"]
    prompt = model["prompts"]["short"]
    assert model["gpu_offloaded"] == "GPU 9/30"
    assert prompt["runs"]["cpu_1"]["gpu_label"] == "CPU"
    assert model["all_identical"] and prompt["all_identical"]
    assert prompt["median_tokens_per_s"] == {"gpu": 750.0, "cpu": 50.0}
    assert prompt["text"] == "t5t6t7"


def test_a_different_token_is_found_with_its_logit_gap(tmp_path: Path) -> None:
    _write_run(tmp_path, "m_long_gpu_1", [5, 6, 7, 8], StopKind.MAX_TOKENS, offloaded=9, decode_ms=3.0)
    _write_run(tmp_path, "m_long_nogpu_1", [5, 6, 9, 8], StopKind.MAX_TOKENS, offloaded=0, decode_ms=3.0)
    prompt = summarize(tmp_path)["models"]["m"]["prompts"]["long"]
    assert not prompt["all_identical"]
    diff = prompt["runs"]["nogpu_1"]["vs_gpu_1"]
    assert diff["identical"] is False and diff["same_stop"] is True
    assert diff["first_difference"]["index"] == 2
    assert diff["first_difference"]["reference_token"] == 7
    assert diff["first_difference"]["other_token"] == 9
    assert diff["first_difference"]["reference_top2_logit_margin"] == 0.25


def test_same_tokens_but_another_stop_reason_is_not_identical(tmp_path: Path) -> None:
    _write_run(tmp_path, "m_short_gpu_1", [5, 6], StopKind.EOS, offloaded=9, decode_ms=1.0)
    _write_run(tmp_path, "m_short_cpu_1", [5, 6], StopKind.MAX_TOKENS, offloaded=0, decode_ms=1.0)
    prompt = summarize(tmp_path)["models"]["m"]["prompts"]["short"]
    diff = prompt["runs"]["cpu_1"]["vs_gpu_1"]
    assert diff == {"identical": False, "same_stop": False}
    assert not prompt["all_identical"]


def test_a_crashed_run_counts_as_not_identical(tmp_path: Path) -> None:
    _write_run(tmp_path, "m_short_gpu_1", [5, 6], StopKind.EOS, offloaded=9, decode_ms=1.0)
    (tmp_path / "m_short_cpu_1.jsonl").write_text("")
    (tmp_path / "m_short_cpu_1.stderr").write_text("Segmentation fault\n")
    prompt = summarize(tmp_path)["models"]["m"]["prompts"]["short"]
    assert prompt["runs"]["cpu_1"]["ok"] is False
    assert "Segmentation fault" in prompt["runs"]["cpu_1"]["stderr_tail"]
    assert not prompt["all_identical"]
