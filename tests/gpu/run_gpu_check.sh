#!/usr/bin/env bash
# GPU offload check for tokendial (issue 9): build llama-cpp-python 0.3.36 with CUDA, then run
# `tokendial generate --json` greedy with every layer on the GPU and with none, on the same prompts,
# and compare token events and stop reasons; report offloaded layers and tokens/s.
#
# Usage (from anywhere):  bash tests/gpu/run_gpu_check.sh [STEP...]      (default: build first)
#   build  wheels + CUDA build of llama-cpp-python + tokendial install (+ an import check)
#   first  runs on the carried first-layers model (.device/first/first.gguf)
#   real   rebuild the real default model from first.gguf + .device/rest/ and run on it
# The work folder (build tree included) is kept, so on a still-warm machine a second call can go on
# where the first stopped (ninja rebuilds only what is missing).
#
# What it reads (carried, git-ignored): .device/whl/*.whl (Python packages missing on the GPU machine),
# .device/src/llama_src.tar.xz (the llama-cpp-python sdist, stripped), .device/first/first.gguf,
# .device/rest/{rest.bin,manifest.json}. tests/gpu/prepare_carry.sh makes them; RESULTS.md has the figures.
#
# Environment knobs:
#   OUT                where results go (default: .device/out); at most a few files, see the end
#   TD_SKIP_BUILD=1    no wheels, no build, no install: use TD_PYTHON's llama_cpp and TD_TOKENDIAL (CPU dry run)
#   TD_PYTHON          python to use (default python3)
#   TD_TOKENDIAL       tokendial command (default: the one installed by the build phase)
#   TD_WORK            work folder kept between calls on a warm machine (default .device/work)
#   TD_CUDA_ARCH       CMAKE_CUDA_ARCHITECTURES (default: from nvidia-smi's compute_cap, e.g. 90-real)
#   TD_MAX_NEW_TOKENS  reply cap for the long prompt (default 256)
#   TD_JOBS            build parallelism (default: nproc)
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CARRY=$REPO/.device
WORK=${TD_WORK:-$CARRY/work}
OUT=${OUT:-$CARRY/out}
PY=${TD_PYTHON:-python3}
JOBS=${TD_JOBS:-$(nproc)}
MAX_NEW=${TD_MAX_NEW_TOKENS:-256}
SITE=$WORK/site
RUNS=$WORK/runs
SDIST_DIR=$WORK/llama_cpp_python-0.3.36
mkdir -p "$OUT" "$WORK" "$RUNS"
PHASES=$OUT/phases.tsv
[ -f "$PHASES" ] || printf 'phase\tseconds\tstatus\n' >"$PHASES"

if [ "${TD_SKIP_BUILD:-0}" != 1 ]; then
    export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
    TOKENDIAL=${TD_TOKENDIAL:-$SITE/bin/tokendial}
else
    TOKENDIAL=${TD_TOKENDIAL:-tokendial}
fi
export PYTHONUNBUFFERED=1
# Keep tokendial's config and data out of the user's folders.
export XDG_CONFIG_HOME=$WORK/xdg/config XDG_DATA_HOME=$WORK/xdg/data XDG_CACHE_HOME=$WORK/xdg/cache
unset TOKENDIAL_CONFIG

# phase NAME COMMAND...: run, time, record; a failed phase stops the script (exit code 3).
phase() {
    local name=$1 start end status
    shift
    echo "=== $name"
    start=$(date +%s.%N)
    "$@"
    status=$?
    end=$(date +%s.%N)
    local secs
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    printf '%s\t%s\t%s\n' "$name" "$secs" "$status" >>"$PHASES"
    echo "=== $name: ${secs}s, exit $status"
    if [ "$status" != 0 ]; then
        echo "PHASE FAILED: $name" >&2
        finish
        exit 3
    fi
}

env_info() {
    {
        echo "date: $(date -u +%FT%TZ)"
        echo "host: $(uname -srm), $(nproc) cores"
        command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader
        command -v nvcc >/dev/null && nvcc --version | tail -2
        "$PY" --version
        "$PY" -c 'import sys; print(sys.executable)'
        command -v cmake >/dev/null && cmake --version | head -1
        command -v ninja >/dev/null && echo "ninja $(ninja --version)"
        "$PY" -m pip --version
    } 2>&1 | tee "$OUT/env.txt"
}

install_wheels() {
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
        "$CARRY"/whl/*.whl
}

cuda_arch() {
    if [ -n "${TD_CUDA_ARCH:-}" ]; then
        echo "$TD_CUDA_ARCH"
        return
    fi
    local cap
    cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
    if [ -n "$cap" ]; then echo "${cap}-real"; else echo native; fi
}

build_llama() {
    command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
    # Extract once: a second call on a warm machine reuses the sources and the build tree (same mtimes).
    [ -d "$SDIST_DIR" ] || tar xJf "$CARRY/src/llama_src.tar.xz" -C "$WORK" || return 1
    local arch
    arch=$(cuda_arch)
    # FA kernels off: they are most of the CUDA compile time; llama.cpp then runs attention without
    # flash attention (its "auto" setting falls back), which this check does not need.
    export CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=$arch -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF \
-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_CUDA_FA=OFF -DGGML_CUDA_NCCL=OFF \
-DGGML_CCACHE=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF"
    export CMAKE_BUILD_PARALLEL_LEVEL=$JOBS
    echo "CMAKE_ARGS=$CMAKE_ARGS" | tee "$OUT/build.log"
    "$PY" -m pip install -v --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir --upgrade \
        --target "$SITE" --config-settings=build-dir="$WORK/build" "$SDIST_DIR" >>"$OUT/build.log" 2>&1
    local status=$?
    grep -E "CUDA Toolkit found|Using CMAKE_CUDA_ARCHITECTURES|Including .* backend|error:|Error" "$OUT/build.log" | head -20
    [ $status = 0 ] || tail -40 "$OUT/build.log"
    return $status
}

install_tokendial() {
    if "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir \
        --upgrade --target "$SITE" "$REPO"; then
        rm -rf "$REPO/build"
        return 0
    fi
    # The machine's setuptools may be too old for the pyproject (PEP 639 license): same entry point, by hand.
    echo "pip could not install tokendial; writing $SITE/bin/tokendial by hand (same entry point)"
    mkdir -p "$SITE/bin"
    printf '#!/bin/sh\nPYTHONPATH="%s:%s${PYTHONPATH:+:$PYTHONPATH}" exec "%s" -c "import sys; from tui.cli import main; sys.exit(main())" "$@"\n' \
        "$SITE" "$REPO" "$(command -v "$PY")" >"$SITE/bin/tokendial"
    chmod +x "$SITE/bin/tokendial"
}

check_import() {
    "$PY" - <<'EOF'
import llama_cpp, textual, pydantic, pydantic_settings
print("llama_cpp", llama_cpp.__version__, "from", llama_cpp.__file__)
print("llama_supports_gpu_offload:", bool(llama_cpp.llama_supports_gpu_offload()))
print("textual", textual.__version__, "pydantic", pydantic.VERSION)
EOF
    echo "tokendial: $(command -v "$TOKENDIAL" || echo "$TOKENDIAL")"
}

PROMPT_SHORT="What is the capital of France? Answer in one sentence."
PROMPT_LONG="Write a detailed story about a lighthouse keeper who finds a message in a bottle."

# one_run LABEL MODEL PROMPT MAX_NEW N_GPU_LAYERS HIDE_GPU
one_run() {
    local label=$1 model=$2 prompt=$3 max_new=$4 layers=$5 hide=$6
    local env_prefix=()
    [ "$hide" = 1 ] && env_prefix=(env CUDA_VISIBLE_DEVICES=)
    rm -f "$RUNS/$label.llama.log"
    TOKENDIAL_LLAMA_LOG=$RUNS/$label.llama.log "${env_prefix[@]}" "$TOKENDIAL" generate --json \
        --model-path "$model" --n-gpu-layers="$layers" --n-ctx 2048 \
        --sampling.mode greedy --sampling.repeat-penalty 1.0 --sampling.seed 42 \
        --sampling.max-new-tokens "$max_new" --system-prompt "You are a helpful assistant." \
        "$prompt" >"$RUNS/$label.jsonl" 2>"$RUNS/$label.stderr"
    local status=$?
    echo "$label: exit $status, $(wc -l <"$RUNS/$label.jsonl") JSON lines"
    [ $status = 0 ] || tail -5 "$RUNS/$label.stderr"
    return $status
}

# run_model TAG MODEL: each prompt on the GPU (all layers, twice), the CPU (0 layers, twice) and the CPU with
# the GPU hidden (CUDA_VISIBLE_DEVICES=, once).
run_model() {
    local tag=$1 model=$2 failed=0
    [ -f "$model" ] || { echo "no model at $model"; return 1; }
    for p in short long; do
        local prompt=$PROMPT_SHORT max_new=64
        [ $p = long ] && prompt=$PROMPT_LONG && max_new=$MAX_NEW
        one_run "${tag}_${p}_gpu_1" "$model" "$prompt" "$max_new" -1 0 || failed=1
        one_run "${tag}_${p}_cpu_1" "$model" "$prompt" "$max_new" 0 0 || failed=1
        one_run "${tag}_${p}_gpu_2" "$model" "$prompt" "$max_new" -1 0 || failed=1
        one_run "${tag}_${p}_cpu_2" "$model" "$prompt" "$max_new" 0 0 || failed=1
        one_run "${tag}_${p}_nogpu_1" "$model" "$prompt" "$max_new" 0 1 || failed=1
    done
    # A failed run is reported by compare_runs.py (and in summary.json), not here: keep going.
    [ $failed = 0 ] || echo "some $tag runs failed: see their .stderr in runs.tar.gz"
    return 0
}

# The first part stays in the work folder, so that a later call (carrying only .device/rest) finds it.
stash_first() {
    [ -f "$WORK/first.gguf" ] && cmp -s "$CARRY/first/first.gguf" "$WORK/first.gguf" && return 0
    cp "$CARRY/first/first.gguf" "$WORK/first.gguf"
}

rebuild_real() {
    "$PY" "$REPO/tests/gpu/carry_model.py" rebuild "$WORK/first.gguf" "$CARRY/rest" \
        "$WORK/SmolLM2-135M-Instruct.Q4_1.gguf"
}

compare() {
    "$PY" "$REPO/tests/gpu/compare_runs.py" "$RUNS" --out "$OUT/summary.json" --phases "$PHASES"
}

finish() {
    # $OUT keeps few files: phases.tsv, env.txt, build.log (compressed), summary.json, runs.tar.gz.
    [ -f "$OUT/build.log" ] && gzip -f "$OUT/build.log"
    tar czf "$OUT/runs.tar.gz" -C "$WORK" runs 2>/dev/null
    true
}

main() {
    local steps=("$@") step
    [ ${#steps[@]} = 0 ] && steps=(build first)
    phase env env_info
    for step in "${steps[@]}"; do
        case $step in
            build)
                if [ "${TD_SKIP_BUILD:-0}" != 1 ]; then
                    phase wheels install_wheels
                    phase build_llama_cpp build_llama
                    phase install_tokendial install_tokendial
                fi
                phase check_import check_import
                ;;
            tokendial)
                phase install_tokendial install_tokendial
                phase check_import check_import
                ;;
            first)
                phase stash_first stash_first
                phase runs_first run_model first "$WORK/first.gguf"
                ;;
            real)
                phase rebuild_real rebuild_real
                phase runs_real run_model real "$WORK/SmolLM2-135M-Instruct.Q4_1.gguf"
                ;;
            *)
                echo "unknown step $step (build, tokendial, first, real)" >&2
                exit 2
                ;;
        esac
    done
    if [ -n "$(ls "$RUNS"/*.jsonl 2>/dev/null)" ]; then
        phase compare compare
    fi
    finish
    cat "$PHASES"
}

# Sourced (for testing one function): define everything, run nothing.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
