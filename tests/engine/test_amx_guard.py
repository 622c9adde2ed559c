"""The SIGILL guard: a build with AMX kernels on a CPU whose kernel doesn't enable AMX refuses to load."""

from __future__ import annotations

from pathlib import Path

import llama_cpp
import pytest

from tui.engine.events import ModelLoadError
from tui.engine.model import amx_trap_problem, load_model

NATIVE = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 |"
SAFE = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | LLAMAFILE = 1 | OPENMP = 1 |"
NO_AMX_FLAGS = frozenset({"avx2", "avx512f", "avx512_bf16"})
AMX_FLAGS = NO_AMX_FLAGS | {"amx_tile", "amx_int8", "amx_bf16"}


def test_native_amx_build_on_a_cpu_without_enabled_amx_is_a_problem() -> None:
    problem = amx_trap_problem(NATIVE, NO_AMX_FLAGS)
    assert problem is not None
    message, hint = problem
    assert "SIGILL" in message and "AMX" in message
    assert "install.sh --rebuild-llama" in hint


@pytest.mark.parametrize(
    ("info", "flags"),
    [(SAFE, NO_AMX_FLAGS), (NATIVE, AMX_FLAGS), (NATIVE, None), (SAFE, AMX_FLAGS)],
    ids=["safe-build", "amx-enabled", "flags-unknown", "safe-build-amx-cpu"],
)
def test_no_problem_otherwise(info: str, flags: frozenset[str] | None) -> None:
    assert amx_trap_problem(info, flags) is None


def test_this_build_passes_the_guard() -> None:
    """The project's own install path builds without AMX, so the real system info is clean here."""
    assert "AMX_INT8 = 1" not in llama_cpp.llama_print_system_info().decode()


def test_load_refuses_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model_path: Path
) -> None:
    monkeypatch.delenv("TOKENDIAL_ALLOW_AMX", raising=False)
    monkeypatch.setattr(llama_cpp, "llama_print_system_info", lambda: NATIVE.encode())
    monkeypatch.setattr("tui.engine.model._cpu_flags", lambda: NO_AMX_FLAGS)
    with pytest.raises(ModelLoadError) as caught:
        load_model(model_path, n_ctx=256, n_gpu_layers=0, n_threads=1)
    assert "SIGILL" in caught.value.message
    assert "--rebuild-llama" in caught.value.hint
