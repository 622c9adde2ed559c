"""``tokendial compare`` end to end on the real model: text, JSON lines with column ids, bad sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui.cli import main

pytestmark = pytest.mark.real_model


def compare(model: Path, *args: str) -> list[str]:
    return ["--model-path", str(model), "--n-threads", "1", "compare", *args]


def test_json_lines_carry_column_ids(model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        compare(
            model_path,
            "Say hello.",
            "--set", "mode=greedy,max_new_tokens=5",
            "--set", "temperature=1.5,seed=3,max_new_tokens=7",
            "--json",
        )
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert records[0]["event"] in ("prompt_progress", "compare_started")
    tokens = [r for r in records if r["event"] == "token"]
    assert {r["column"] for r in tokens} == {0, 1}
    dones = [r for r in records if r["event"] == "done"]
    assert sorted(r["column"] for r in dones) == [0, 1]
    final = records[-1]
    assert final["event"] == "compare_done"
    columns = final["columns"]
    assert [c["params"]["mode"] for c in columns] == ["greedy", "sample"]
    assert [c["params"]["max_new_tokens"] for c in columns] == [5, 7]
    assert [c["stop"]["kind"] for c in columns] == ["max_tokens", "max_tokens"]
    assert columns[1]["seed"] == 3
    assert final["prompt_evaluated"] == final["prompt_tokens"]


def test_text_prints_each_column_and_why_it_stopped(
    model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        compare(model_path, "Say hello.", "--set", "greedy,max_new_tokens=4", "--set", "max_new_tokens=6")
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "── column 1: greedy · max 4 ──" in out and "── column 2:" in out
    assert "[stopped at 4/4 tokens (max new tokens)] 4 tokens" in out
    assert "[stopped at 6/6 tokens (max new tokens)] 6 tokens" in out
    assert "2 columns in one batch: prompt" in out


def test_an_invalid_set_is_named_and_nothing_starts(
    model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(compare(model_path, "Hi", "--set", "temperature=0.2", "--set", "temperature=9,top_k=3"))
    captured = capsys.readouterr()
    assert code == 2
    assert "set 2 ('temperature=9,top_k=3'): temperature:" in captured.err
    assert "Nothing was started" in captured.err
    assert captured.out == ""


def test_columns_that_do_not_fit_are_refused(model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--n-ctx",
            "256",
            *compare(model_path, "Hi", "--set", "max_new_tokens=200", "--set", "max_new_tokens=200"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 2
    assert "1 column fits" in captured.err and "(n_ctx)" in captured.err
    assert captured.out == ""


def test_one_set_is_not_a_compare(model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(compare(model_path, "Hi", "--set", "temperature=0.2")) == 2
    assert "at least two parameter sets" in capsys.readouterr().err
