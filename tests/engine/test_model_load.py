"""Bad model files give a ModelLoadError with a clear message, never llama.cpp's raw exception."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tui.engine.events import ModelLoadError
from tui.engine.llama_engine import load_engine
from tui.engine.model import LLAMA_LOG, check_model_file, round_ctx
from tui.engine.protocol import LoadConfig


def write_gguf(path: Path, arch: str, *, with_tensor: bool = True) -> Path:
    """A tiny valid GGUF file (header, metadata and one small tensor) for architecture ``arch``."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name("tiny test model")
    writer.add_block_count(1)
    writer.add_context_length(64)
    if with_tensor:
        writer.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def load_error(path: Path) -> ModelLoadError:
    with pytest.raises(ModelLoadError) as caught:
        load_engine(LoadConfig(model_path=path, n_ctx=256, n_threads=1))
    return caught.value


def test_missing_file(tmp_path: Path) -> None:
    error = load_error(tmp_path / "nope.gguf")
    assert "Model file not found" in error.message and "nope.gguf" in error.message
    assert "tokendial fetch" in error.hint


def test_directory(tmp_path: Path) -> None:
    error = load_error(tmp_path)
    assert "is a directory" in error.message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    assert "is empty (0 bytes)" in load_error(path).message


def test_not_gguf(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}" + b"\x00" * 100)
    error = load_error(path)
    assert "is not a GGUF model file" in error.message
    assert "convert" in error.hint


def test_header_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "short.gguf"
    path.write_bytes(b"GGUF\x03\x00")
    assert "truncated" in load_error(path).message


def test_unknown_architecture(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "alien.gguf", "alienformer")
    error = load_error(path)
    assert "architecture 'alienformer'" in error.message
    assert "does not know" in error.message


def test_known_architecture_missing_tensors(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "hollow.gguf", "llama")
    error = load_error(path)
    assert error.message.startswith("llama.cpp could not load")
    assert str(path) in error.message


@pytest.mark.real_model
def test_truncated_model(tmp_path: Path, model_path: Path) -> None:
    path = tmp_path / "cut.gguf"
    with model_path.open("rb") as source, path.open("wb") as target:
        target.write(source.read(model_path.stat().st_size // 2))
    error = load_error(path)
    assert "truncated or corrupt" in error.message
    assert "fetch it again" in error.hint


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "locked.gguf", "llama")
    path.chmod(0)
    try:
        assert "permission denied" in load_error(path).message
    finally:
        path.chmod(0o644)


def test_check_accepts_a_gguf_header(tmp_path: Path) -> None:
    check_model_file(write_gguf(tmp_path / "ok.gguf", "llama"))  # no exception


def test_round_ctx_to_multiples_of_256() -> None:
    assert [round_ctx(n) for n in (1, 256, 257, 1000, 1024)] == [256, 256, 512, 1024, 1024]


@pytest.mark.real_model
def test_loading_prints_nothing_and_captures_the_log(tmp_path: Path, model_path: Path) -> None:
    """verbose=False would redirect fds 1/2 for the process; we load with our own log callback."""
    code = (
        "from pathlib import Path\n"
        "from tui.engine.model import load_model, LLAMA_LOG\n"
        f"m = load_model(Path({str(model_path)!r}), n_ctx=256, n_gpu_layers=0, n_threads=1)\n"
        "assert any('llama_model_loader' in line for _, line in LLAMA_LOG.lines)\n"
        "m.llm.close()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


@pytest.mark.real_model
def test_gpu_layers_without_offload_warn_loudly(model_path: Path) -> None:
    import llama_cpp

    engine = load_engine(LoadConfig(model_path=model_path, n_ctx=256, n_threads=1, n_gpu_layers=-1))
    try:
        info = engine.info
        if llama_cpp.llama_supports_gpu_offload():
            assert info.gpu_layers_offloaded == info.layers_total
            assert info.gpu_label == f"GPU {info.layers_total}/{info.layers_total}"
        else:
            assert info.backend == "CPU" and info.gpu_label == "CPU"
            assert len(info.warnings) == 1 and "GPU OFFLOAD UNAVAILABLE" in info.warnings[0]
    finally:
        engine.close()
    assert LLAMA_LOG.text()


def test_engine_and_headless_import_no_textual() -> None:
    code = (
        "import sys\n"
        "import tui.engine, tui.engine.llama_engine, tui.engine.model, tui.engine.chat_format\n"
        "import tui.engine.sampling_math, tui.headless\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(
    shutil.which("lint-imports") is None and not Path(sys.prefix, "bin", "lint-imports").exists(),
    reason="import-linter not installed",
)
def test_import_linter_contract() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.prefix, "bin", "lint-imports"))
    result = subprocess.run([exe], capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stdout + result.stderr
