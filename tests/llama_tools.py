"""Build llama.cpp's own tools (llama-bench, llama-server, ggml-rpc-server) once and cache them.

The sources are the llama.cpp tree vendored in the pinned llama-cpp-python sdist, so the tools run the
same kernels as the app; the CPU flags come from ``tui/scripts/install.sh --print-cmake-args`` (never a
hard-coded instruction set: an AVX-512 build dies with SIGILL on CPUs without it). A build lives in
``<cache>/<key>`` where the key names the llama-cpp-python version and a hash of the cmake flags; a
finished build is reused as is (seconds), a changed flag set builds next to it.

    python -m tests.llama_tools            # build (or find) all three, print their paths
    python -m tests.llama_tools --print    # only print where they would be, build nothing

``$TOKENDIAL_LLAMA_TOOLS_CACHE`` moves the cache (default ``~/.cache/tokendial/llama-tools``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
REPO = Path(__file__).resolve().parent.parent
INSTALL_SH = REPO / "tui" / "scripts" / "install.sh"

# The binaries we need, by the cmake target that builds each (the rpc worker's target in this llama.cpp
# is ggml-rpc-server; older trees called it rpc-server).
TARGETS = ("llama-bench", "llama-server", "ggml-rpc-server")
BASE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_RPC=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_OPENSSL=OFF",
    # The server's web UI: neither built (needs npm) nor fetched prebuilt (network); an empty page.
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
)
STAMP = "build.json"


def cache_root() -> Path:
    """Where the sdist, the unpacked sources and every keyed build live between runs."""
    env = os.environ.get("TOKENDIAL_LLAMA_TOOLS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "tokendial" / "llama-tools"


def cpu_flags() -> tuple[str, ...]:
    """The CPU flags install.sh builds llama-cpp-python with on this machine (its CMAKE_ARGS too)."""
    done = subprocess.run(
        ["bash", str(INSTALL_SH), "--print-cmake-args"], capture_output=True, text=True, check=True
    )
    return tuple(done.stdout.split())


def cmake_flags() -> tuple[str, ...]:
    """Every flag of the configure step, in a stable order (the cache key hashes them)."""
    return (*BASE_FLAGS, *cpu_flags())


def build_key(flags: tuple[str, ...]) -> str:
    """The cache key: the llama.cpp version (that of the sdist) and the flags."""
    digest = hashlib.sha256("\n".join(flags).encode()).hexdigest()[:12]
    return f"llama-cpp-python-{LLAMA_CPP_PYTHON_VERSION}-{digest}"


@dataclass(frozen=True)
class LlamaTools:
    """The built binaries of one cached build."""

    bench: Path
    server: Path
    rpc_server: Path
    build_dir: Path
    build_s: float
    """How long the build took when it was made (0 when found elsewhere)."""


def _binaries(bin_dir: Path) -> dict[str, Path] | None:
    found = {t: bin_dir / t for t in TARGETS}
    if all(p.is_file() and os.access(p, os.X_OK) for p in found.values()):
        return found
    return None


def _tools(build: Path, build_s: float) -> LlamaTools | None:
    found = _binaries(build / "bin")
    if found is None:
        return None
    return LlamaTools(found["llama-bench"], found["llama-server"], found["ggml-rpc-server"], build, build_s)


def find_tools(flags: tuple[str, ...] | None = None) -> LlamaTools | None:
    """The finished cached build for these flags (default: this machine's), or None."""
    key_dir = cache_root() / build_key(flags if flags is not None else cmake_flags())
    stamp = key_dir / STAMP
    if not stamp.is_file():
        return None
    try:
        build_s = float(json.loads(stamp.read_text()).get("build_s", 0.0))
    except (OSError, ValueError):
        return None
    return _tools(key_dir / "build", build_s)


def _sources(log: list[str]) -> Path:
    """The llama.cpp tree vendored in the llama-cpp-python sdist (downloaded and unpacked once)."""
    root = cache_root()
    src_root = root / "src"
    tree = src_root / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}" / "vendor" / "llama.cpp"
    if (tree / "CMakeLists.txt").is_file():
        return tree
    sdist_dir = root / "sdist"
    sdist_dir.mkdir(parents=True, exist_ok=True)
    name = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"
    if not (sdist_dir / name).is_file():
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "-d", str(sdist_dir),
        ]  # fmt: skip
        log.append(" ".join(cmd))
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp, tarfile.open(sdist_dir / name) as tar:
        tar.extractall(tmp, filter="data")
        src_root.mkdir(parents=True, exist_ok=True)
        extracted = Path(tmp) / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}"
        extracted.rename(src_root / extracted.name)
    return tree


def compiler_launcher() -> tuple[str, ...]:
    """ccache for the compilers when it is installed (not part of the cache key: same binaries)."""
    if shutil.which("ccache") is None:
        return ()
    return ("-DCMAKE_C_COMPILER_LAUNCHER=ccache", "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache")


def build_tools(jobs: int | None = None, nice: int = 10) -> tuple[LlamaTools | None, str]:
    """Find or build all the tools (niced, ``-j jobs``); returns (the tools or None, the build log)."""
    log: list[str] = []
    try:
        flags = cmake_flags()
        found = find_tools(flags)
        if found is not None:
            return found, f"cached build: {found.build_dir}"
        key_dir = cache_root() / build_key(flags)
        tree = _sources(log)
        build = key_dir / "build"
        niced = ["nice", "-n", str(nice)] if shutil.which("nice") else []
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        jobs = jobs or os.cpu_count() or 2
        configure = [
            *niced, "cmake", "-S", str(tree), "-B", str(build), *generator, *flags, *compiler_launcher(),
        ]  # fmt: skip
        compile_ = [*niced, "cmake", "--build", str(build), "--target", *TARGETS, "-j", str(jobs)]
        started = time.monotonic()
        for cmd in (configure, compile_):
            log.append(" ".join(cmd))
            done = subprocess.run(cmd, capture_output=True, text=True)
            log.append(done.stdout[-4000:] + done.stderr[-4000:])
            if done.returncode != 0:
                return None, "\n".join(log)
        build_s = time.monotonic() - started
        tools = _tools(build, build_s)
        if tools is None:
            log.append(f"the build finished but {', '.join(TARGETS)} are not all in {build / 'bin'}")
            return None, "\n".join(log)
        stamp = {"flags": list(flags), "targets": list(TARGETS), "build_s": round(build_s, 1)}
        (key_dir / STAMP).write_text(json.dumps(stamp, indent=1) + "\n")
        log.append(f"built in {build_s:.0f} s: {build}")
        return tools, "\n".join(log)
    except (OSError, subprocess.CalledProcessError, tarfile.TarError) as exc:
        log.append(f"build failed: {exc}")
        return None, "\n".join(log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.llama_tools", description=__doc__.split("\n")[0])
    parser.add_argument("--print", action="store_true", help="print the cache key and paths, build nothing")
    parser.add_argument("-j", "--jobs", type=int, default=None, help="parallel compile jobs (default: cores)")
    args = parser.parse_args(argv)
    flags = cmake_flags()
    key_dir = cache_root() / build_key(flags)
    if args.print:
        found = find_tools(flags)
        print(f"key: {key_dir.name}\nflags: {' '.join(flags)}\nbuilt: {found is not None}")
        for target in TARGETS:
            print(key_dir / "build" / "bin" / target)
        return 0
    started = time.monotonic()
    tools, text = build_tools(args.jobs)
    if tools is None:
        print(text[-6000:], file=sys.stderr)
        print("llama tools: build failed", file=sys.stderr)
        return 1
    print(text.splitlines()[-1])
    print(f"llama tools ready in {time.monotonic() - started:.1f} s (cold build took {tools.build_s:.0f} s)")
    for path in (tools.bench, tools.server, tools.rpc_server):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
