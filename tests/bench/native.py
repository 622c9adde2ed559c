"""Native llama.cpp reference: build ``llama-bench`` from the llama-cpp-python sdist and run tg256.

The build uses the same safe CPU flags as our llama-cpp-python build, so the comparison is
between the same kernels; it is cached (``$TOKENDIAL_BENCH_CACHE`` or ``~/.cache/tokendial-bench``)
and reused on the next run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DGGML_AVX512=ON",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
)


def cache_dir() -> Path:
    """Where the sdist, the sources and the build live between runs."""
    env = os.environ.get("TOKENDIAL_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "tokendial-bench"


def _binary_in(build: Path) -> Path | None:
    for candidate in (build / "bin" / "llama-bench", build / "tools" / "llama-bench" / "llama-bench"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_llama_bench() -> Path | None:
    """An existing llama-bench: ``$TOKENDIAL_LLAMA_BENCH``, the cache, then PATH."""
    env = os.environ.get("TOKENDIAL_LLAMA_BENCH")
    if env and Path(env).is_file():
        return Path(env)
    cached = _binary_in(cache_dir() / "build")
    if cached:
        return cached
    found = shutil.which("llama-bench")
    return Path(found) if found else None


def _sources(log: list[str]) -> Path:
    """The llama.cpp tree vendored in the llama-cpp-python sdist (downloaded once)."""
    src_root = cache_dir() / "src"
    tree = src_root / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}" / "vendor" / "llama.cpp"
    if (tree / "CMakeLists.txt").is_file():
        return tree
    sdist_dir = cache_dir() / "sdist"
    sdist_dir.mkdir(parents=True, exist_ok=True)
    tarballs = sorted(sdist_dir.glob(f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"))
    if not tarballs:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "-d", str(sdist_dir),
        ]  # fmt: skip
        log.append(" ".join(cmd))
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        tarballs = sorted(sdist_dir.glob("llama_cpp_python-*.tar.gz"))
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp, tarfile.open(tarballs[0]) as tar:
        tar.extractall(tmp, filter="data")
        src_root.mkdir(parents=True, exist_ok=True)
        extracted = Path(tmp) / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}"
        extracted.rename(src_root / extracted.name)
    return tree


def build_llama_bench(jobs: int = 2) -> tuple[Path | None, str]:
    """Build the llama-bench target (niced, ``-j jobs``); returns (binary or None, log text)."""
    log: list[str] = []
    try:
        tree = _sources(log)
        build = cache_dir() / "build"
        nice = ["nice", "-n", "19"] if shutil.which("nice") else []
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        configure = [*nice, "cmake", "-S", str(tree), "-B", str(build), *generator, *CMAKE_FLAGS]
        compile_ = [*nice, "cmake", "--build", str(build), "--target", "llama-bench", "-j", str(jobs)]
        for cmd in (configure, compile_):
            log.append(" ".join(cmd))
            done = subprocess.run(cmd, capture_output=True, text=True)
            log.append(done.stdout[-4000:] + done.stderr[-4000:])
            if done.returncode != 0:
                return None, "\n".join(log)
        return _binary_in(build), "\n".join(log)
    except (OSError, subprocess.CalledProcessError, tarfile.TarError) as exc:
        log.append(f"build failed: {exc}")
        return None, "\n".join(log)


@dataclass(frozen=True)
class NativeResult:
    """tok/s of each llama-bench repetition (tg test)."""

    samples: tuple[float, ...]
    binary: Path
    build_info: str


def run_llama_bench(
    binary: Path, model: Path, n_gen: int, threads: int, reps: int, depth: int = 0, flash_attn: str = "off"
) -> NativeResult:
    """Run ``llama-bench -p 0 -n n_gen -d depth`` and return every repetition's tok/s.

    ``depth`` tokens are in the KV cache before the timed tokens (our prompt length), and flash
    attention is off like in llama-cpp-python's and our engine's contexts.
    """
    cmd = [
        str(binary), "-m", str(model), "-p", "0", "-n", str(n_gen), "-t", str(threads),
        "-r", str(reps), "-o", "json", "-ngl", "0", "-d", str(depth), "-fa", flash_attn,
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rows = json.loads(done.stdout)
    row = next(r for r in rows if r.get("n_gen") == n_gen)
    samples = tuple(float(s) for s in row.get("samples_ts", [row["avg_ts"]]))
    info = f"{row.get('build_commit', '?')} ({row.get('cpu_info', '?')})"
    return NativeResult(samples=samples, binary=binary, build_info=info)


if __name__ == "__main__":  # build only: python -m tests.bench.native
    found = find_llama_bench()
    if found is None:
        found, text = build_llama_bench()
        print(text[-3000:])
    print(found)
