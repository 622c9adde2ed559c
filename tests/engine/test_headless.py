"""``tokendial generate`` (run_generate) on the real model: text and JSON output, exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from settings.config import Settings
from settings.sampling import SamplingMode, SamplingParams
from tui.headless import run_generate

GREEDY = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0, max_new_tokens=40)


def settings_for(model: Path, **sampling: object) -> Settings:
    return Settings(
        model_path=model,
        n_ctx=512,
        n_threads=1,
        top_n=5,
        system_prompt="You are a helpful assistant.",
        sampling=GREEDY.model_copy(update=sampling),
    )


def generate(settings: Settings, prompt: str, json_output: bool) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_generate(settings, prompt, json_output, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.real_model
def test_text_mode_streams_reply_and_reports_stop(model_path: Path) -> None:
    code, out, err = generate(settings_for(model_path), "What is the capital of France?", False)
    assert code == 0
    assert out == "The capital of France is Paris.\n"
    assert "[end of sequence <|im_end|>]" in err


@pytest.mark.real_model
def test_text_mode_never_prints_the_stop_string(model_path: Path) -> None:
    code, out, err = generate(
        settings_for(model_path, stop=("of France",)), "What is the capital of France?", False
    )
    assert code == 0
    assert out == "The capital \n"
    assert "[stop string 'of France']" in err


@pytest.mark.real_model
def test_json_mode_one_object_per_event_then_done(model_path: Path) -> None:
    code, out, _ = generate(settings_for(model_path, max_new_tokens=5), "Tell me a story.", True)
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    kinds = [r["event"] for r in records]
    assert kinds[0] == "prompt_progress" and kinds[-1] == "done"
    tokens = [r for r in records if r["event"] == "token"]
    assert len(tokens) == 5 and [t["index"] for t in tokens] == list(range(5))
    first = tokens[0]
    assert len(first["candidates"]) == 5 and first["p_final"] == 1.0
    assert first["candidates"][1]["cut_by"] == "greedy"
    done = records[-1]
    assert done["stop"]["kind"] == "max_tokens" and done["stop"]["limit"] == 5
    assert done["stop"]["label"] == "stopped at 5/5 tokens (max new tokens)"
    assert done["text"] == "".join(t["text"] for t in tokens)
    assert done["generated"] == 5 and set(done["timings"]) >= {"prompt_ms", "decode_ms", "tokens_per_s"}
    assert done["model"]["gpu_label"] == "CPU" and done["model"]["gpu_layers_requested"] == 0
    assert done["model"]["quantization"] == "Q4_1"
    assert done["params"]["0"]["mode"] == "greedy"


def test_load_error_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "notes.gguf"
    bad.write_text("hello")
    code, out, err = generate(settings_for(bad), "hi", False)
    assert code == 1 and out == ""
    assert "cannot load the model" in err and "not a GGUF model file" in err
    assert "Traceback" not in err


def test_empty_prompt_is_refused(tmp_path: Path) -> None:
    code, _, err = generate(settings_for(tmp_path / "x.gguf"), "  ", False)
    assert code == 2 and "prompt is empty" in err


@pytest.mark.real_model
def test_reply_error_exits_1(model_path: Path) -> None:
    code, _, err = generate(settings_for(model_path), "word " * 900, False)
    assert code == 1
    assert "too long for the context" in err
