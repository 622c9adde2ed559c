"""The shared llama.cpp tool build: flags from install.sh, a cache keyed by version and flags."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests import llama_tools
from tests.bench import native

NO_AVX512 = "flags\t\t: fpu sse4_2 avx avx2 fma f16c bmi2\n"
AVX512 = "flags\t\t: fpu sse4_2 avx avx2 fma f16c bmi2 avx512f avx512cd avx512vl avx512dq avx512bw\n"


def _flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpuinfo: str) -> tuple[str, ...]:
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    monkeypatch.setenv("CPUINFO", str(path))
    monkeypatch.setenv("INSTALL_ARCH", "x86_64")
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
    return llama_tools.cmake_flags()


def test_cpu_flags_follow_install_sh_not_a_fixed_instruction_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old benchmark build hard-coded -DGGML_AVX512=ON: SIGILL on CPUs without AVX-512."""
    without = _flags(tmp_path, monkeypatch, NO_AVX512)
    assert "-DGGML_AVX512=OFF" in without and "-DGGML_AVX512=ON" not in without
    assert "-DGGML_NATIVE=OFF" in without and "-DGGML_AMX_INT8=OFF" in without
    assert {"-DGGML_RPC=ON", "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_OPENSSL=OFF"} <= set(without)
    with_avx512 = _flags(tmp_path, monkeypatch, AVX512)
    assert "-DGGML_AVX512=ON" in with_avx512
    assert llama_tools.build_key(without) != llama_tools.build_key(with_avx512)  # separate cached builds
    assert llama_tools.build_key(without).startswith("llama-cpp-python-0.3.36-")


def test_a_finished_build_is_found_in_its_keyed_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENDIAL_LLAMA_TOOLS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TOKENDIAL_LLAMA_BENCH", raising=False)
    flags = llama_tools.cmake_flags()
    key_dir = tmp_path / "cache" / llama_tools.build_key(flags)
    bin_dir = key_dir / "build" / "bin"
    bin_dir.mkdir(parents=True)
    assert llama_tools.find_tools(flags) is None  # nothing built yet
    for target in llama_tools.TARGETS:
        (bin_dir / target).write_text("#!/bin/sh\n")
        (bin_dir / target).chmod(0o755)
    assert llama_tools.find_tools(flags) is None  # binaries without the stamp: an unfinished build
    (key_dir / llama_tools.STAMP).write_text(json.dumps({"build_s": 12.5}))
    tools = llama_tools.find_tools(flags)
    assert tools is not None and tools.server == bin_dir / "llama-server" and tools.build_s == 12.5
    assert tools.rpc_server.name == "ggml-rpc-server"
    built, log = llama_tools.build_tools()
    assert built == tools and log.startswith("cached build")  # reused, nothing compiled
    assert native.find_llama_bench() == bin_dir / "llama-bench"  # the benchmark uses the shared build


def test_ccache_is_used_when_installed_and_leaves_the_cache_key_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = os.environ.get("PATH", "")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert llama_tools.compiler_launcher() == ()
    ccache = tmp_path / "ccache"
    ccache.write_text('#!/bin/sh\nexec "$@"\n')
    ccache.chmod(0o755)
    assert llama_tools.compiler_launcher() == (
        "-DCMAKE_C_COMPILER_LAUNCHER=ccache",
        "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache",
    )
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{path}")
    assert llama_tools.compiler_launcher() and not any("LAUNCHER" in f for f in llama_tools.cmake_flags())
