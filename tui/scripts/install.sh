#!/usr/bin/env bash
# Install tokendial into a virtual environment, building llama-cpp-python with safe CPU flags.
#
# Usage: tui/scripts/install.sh [--no-test] [--rebuild-llama] [--print-cmake-args]
#   --no-test        install without the test extra (pytest, snapshot plugin, linters)
#   --rebuild-llama  rebuild llama-cpp-python even if pip has a wheel for it (after changing CMAKE_ARGS)
#   --print-cmake-args  only print the CMAKE_ARGS the build would use, install nothing
# Environment:
#   VENV             the virtual environment to create or reuse (default: <repo>/.venv)
#   PYTHON           the interpreter that creates it (default: python3; needs Python >= 3.11)
#   CMAKE_ARGS       extra llama.cpp build flags, e.g. "-DGGML_CUDA=on"; kept, and the CPU flags below
#                    are appended unless it already sets GGML_NATIVE (then it is used as is)
#
# Why: a native llama.cpp build (GGML_NATIVE=ON, the default) can crash with SIGILL at the first token
# on CPUs that report AMX in CPUID but trap it (seen on our CI machines). So on x86_64 we build with
# GGML_NATIVE=OFF and turn on exactly the instruction sets /proc/cpuinfo lists, never AMX.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
PYTHON="${PYTHON:-python3}"
LLAMA_REQ="llama-cpp-python==0.3.36"
EXTRA="[test]"
REBUILD=0
PRINT_ONLY=0

for arg in "$@"; do
    case "$arg" in
        --no-test) EXTRA="" ;;
        --rebuild-llama) REBUILD=1 ;;
        --print-cmake-args) PRINT_ONLY=1 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option: $arg (see --help)" >&2; exit 2 ;;
    esac
done

# The llama.cpp CPU flags for this machine, printed as cmake arguments (empty: keep llama.cpp's defaults).
cpu_cmake_args() {
    local arch flags out
    arch="${INSTALL_ARCH:-$(uname -m)}"
    if [ "$arch" != "x86_64" ] && [ "$arch" != "amd64" ]; then
        return 0
    fi
    flags=" $(grep -m1 '^flags' "${CPUINFO:-/proc/cpuinfo}" 2>/dev/null | cut -d: -f2) "
    has() { case "$flags" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
    onoff() { if "$@"; then echo ON; else echo OFF; fi; }
    all() { local f; for f in "$@"; do has "$f" || return 1; done; }
    out="-DGGML_NATIVE=OFF"
    out="$out -DGGML_SSE42=$(onoff has sse4_2)"
    out="$out -DGGML_AVX=$(onoff has avx)"
    out="$out -DGGML_AVX2=$(onoff has avx2)"
    out="$out -DGGML_BMI2=$(onoff has bmi2)"
    out="$out -DGGML_FMA=$(onoff has fma)"
    out="$out -DGGML_F16C=$(onoff has f16c)"
    out="$out -DGGML_AVX_VNNI=$(onoff has avx_vnni)"
    # GGML_AVX512 compiles with -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw: require all five.
    if all avx512f avx512cd avx512vl avx512dq avx512bw; then
        out="$out -DGGML_AVX512=ON"
        out="$out -DGGML_AVX512_VBMI=$(onoff has avx512vbmi)"
        out="$out -DGGML_AVX512_VNNI=$(onoff has avx512_vnni)"
        out="$out -DGGML_AVX512_BF16=$(onoff has avx512_bf16)"
    else
        out="$out -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF"
    fi
    out="$out -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    echo "$out"
}

case "${CMAKE_ARGS:-}" in
    *GGML_NATIVE*) ;;  # the user chose native or not: respect it
    *) CMAKE_ARGS="$(echo "${CMAKE_ARGS:-} $(cpu_cmake_args)" | sed 's/^ *//; s/ *$//')" ;;
esac
export CMAKE_ARGS
if [ "$PRINT_ONLY" = 1 ]; then
    echo "$CMAKE_ARGS"
    exit 0
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "install.sh: $PYTHON is missing or older than Python 3.11 (set PYTHON=/path/to/python3.11+)" >&2
    exit 1
fi

if command -v nproc >/dev/null 2>&1; then
    export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
fi

echo "install.sh: virtual environment: $VENV"
echo "install.sh: CMAKE_ARGS=${CMAKE_ARGS:-<llama.cpp defaults>}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi

if [ "$REBUILD" = 1 ]; then
    echo "install.sh: rebuilding $LLAMA_REQ from source (several minutes)"
    "$VENV/bin/python" -m pip install --no-cache-dir --force-reinstall --no-deps "$LLAMA_REQ"
fi
echo "install.sh: installing tokendial$EXTRA (llama-cpp-python builds from source unless pip has its wheel cached)"
"$VENV/bin/python" -m pip install --disable-pip-version-check -e "$REPO$EXTRA"
echo "install.sh: done. Run: $VENV/bin/tokendial   (first start fetches the default model)"
