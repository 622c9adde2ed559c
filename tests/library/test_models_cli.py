"""``tokendial models [--json]`` over a real folder layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.library.gguf_files import write_gguf
from tui.cli import main


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    models = home / "models"
    write_gguf(models / "Chat-Q4_K_M.gguf", n_vocab=128)
    write_gguf(models / "Base-Q8_0.gguf", template=None, file_type=7, name="Base \x1b[31mred")
    (models / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")
    extra = tmp_path / "extra"
    write_gguf(extra / "Other-Q6_K.gguf", file_type=18)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    for name in ("HF_HUB_CACHE", "HF_HOME", "LLAMA_CACHE", "OLLAMA_MODELS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TOKENDIAL_MODELS_DIR", str(models))
    monkeypatch.setenv("TOKENDIAL_LIBRARY_DIRS", json.dumps([str(extra)]))
    return home


def test_models_lists_cards_and_problems(layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "models folder"
    assert "  Base-Q8_0.gguf" in lines and "  Chat-Q4_K_M.gguf" in lines and "folder" in lines
    chat_card = lines[lines.index("  Chat-Q4_K_M.gguf") + 1]
    assert (
        chat_card.strip().startswith("llama · ? · Q4_K_M · ")
        and " · vocab 128 · template · mem ~" in chat_card
    )
    base_card = lines[lines.index("  Base-Q8_0.gguf") + 1]
    assert "NO template" in base_card
    broken = lines[lines.index("  broken.gguf") + 1]
    assert broken.strip().startswith("unusable: truncated")
    assert "\x1b" not in out


def test_models_json(layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--n-ctx", "4096", "models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    models = {model["label"]: model for model in listing["models"]}
    assert set(models) == {"Base-Q8_0.gguf", "Chat-Q4_K_M.gguf", "broken.gguf", "Other-Q6_K.gguf"}
    chat = models["Chat-Q4_K_M.gguf"]["card"]
    assert chat["n_ctx"] == 4096 and chat["has_chat_template"] is True
    assert chat["kv_cache_bytes"] == 2 * 4096 * (16 * 2 * 2) * 2
    assert chat["memory_estimate_bytes"] == chat["file_size"] + chat["kv_cache_bytes"]
    assert models["Base-Q8_0.gguf"]["card"]["has_chat_template"] is False
    assert models["broken.gguf"]["usable"] is False and models["broken.gguf"]["card"] is None
    assert models["Other-Q6_K.gguf"]["source"] == "folder"
