"""The install script's llama.cpp build flags (the SIGILL guard): computed from the CPU's flags, never AMX."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tui" / "scripts" / "install.sh"
AVX2_CPU = "flags\t\t: fpu sse4_2 avx avx2 bmi2 fma f16c amx_tile amx_int8\n"
AVX512_CPU = (
    "flags\t\t: fpu sse4_2 avx avx2 bmi2 fma f16c avx512f avx512cd avx512vl avx512dq avx512bw "
    "avx512vbmi avx512_vnni avx_vnni amx_tile amx_bf16\n"
)


def cmake_args(tmp_path: Path, cpuinfo: str, **env: str) -> str:
    info = tmp_path / "cpuinfo"
    info.write_text(cpuinfo)
    clean = {k: v for k, v in os.environ.items() if k not in ("CMAKE_ARGS", "INSTALL_ARCH")}
    result = subprocess.run(
        ["bash", str(SCRIPT), "--print-cmake-args"],
        env={**clean, "CPUINFO": str(info), "INSTALL_ARCH": "x86_64", **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def test_avx2_cpu_gets_avx2_but_no_avx512_and_never_amx(tmp_path: Path) -> None:
    args = cmake_args(tmp_path, AVX2_CPU).split()
    assert args[0] == "-DGGML_NATIVE=OFF"
    for on in ("SSE42", "AVX", "AVX2", "BMI2", "FMA", "F16C"):
        assert f"-DGGML_{on}=ON" in args
    for off in ("AVX_VNNI", "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16"):
        assert f"-DGGML_{off}=OFF" in args
    for amx in ("AMX_TILE", "AMX_INT8", "AMX_BF16"):
        assert f"-DGGML_{amx}=OFF" in args
    assert not any(a.startswith("-DGGML_AMX") and a.endswith("=ON") for a in args)


def test_avx512_cpu(tmp_path: Path) -> None:
    args = cmake_args(tmp_path, AVX512_CPU).split()
    for on in ("AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX_VNNI"):
        assert f"-DGGML_{on}=ON" in args
    assert "-DGGML_AVX512_BF16=OFF" in args
    assert "-DGGML_AMX_TILE=OFF" in args


def test_partial_avx512_is_off(tmp_path: Path) -> None:
    args = cmake_args(tmp_path, AVX2_CPU.replace("fpu", "fpu avx512f avx512_vnni")).split()
    assert "-DGGML_AVX512=OFF" in args
    assert "-DGGML_AVX512_VNNI=OFF" in args


def test_user_cmake_args_are_kept(tmp_path: Path) -> None:
    assert cmake_args(tmp_path, AVX2_CPU, CMAKE_ARGS="-DGGML_CUDA=on").startswith(
        "-DGGML_CUDA=on -DGGML_NATIVE=OFF "
    )
    assert cmake_args(tmp_path, AVX2_CPU, CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_CUDA=on") == (
        "-DGGML_NATIVE=ON -DGGML_CUDA=on"
    )


def test_other_architectures_keep_llama_cpp_defaults(tmp_path: Path) -> None:
    assert cmake_args(tmp_path, AVX2_CPU, INSTALL_ARCH="aarch64") == ""
    assert (
        cmake_args(tmp_path, AVX2_CPU, INSTALL_ARCH="aarch64", CMAKE_ARGS="-DGGML_CUDA=on")
        == "-DGGML_CUDA=on"
    )


def test_unknown_option_is_exit_2() -> None:
    result = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown option: --bogus" in result.stderr


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs /proc/cpuinfo")
def test_this_machine_never_gets_amx() -> None:
    clean = {k: v for k, v in os.environ.items() if k not in ("CMAKE_ARGS", "CPUINFO", "INSTALL_ARCH")}
    out = subprocess.run(
        ["bash", str(SCRIPT), "--print-cmake-args"], env=clean, capture_output=True, text=True, check=True
    ).stdout
    assert "AMX_TILE=ON" not in out and "AMX_INT8=ON" not in out and "AMX_BF16=ON" not in out
