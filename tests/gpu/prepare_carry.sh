#!/usr/bin/env bash
# Prepare what tests/gpu/run_gpu_check.sh needs on the GPU machine (which has no network), in the
# git-ignored folder .device/ of the repo:
#   .device/whl/    wheels for Python 3.12 (the GPU machine's python) of packages it lacks
#   .device/src/    the llama-cpp-python 0.3.36 sdist without .git, docs, tests, vocab files, other backends
#   .device/first/  first.gguf: the default model's first 8 layers (a valid GGUF, byte-identical tensors)
#   .device/rest/   rest.bin + manifest.json: the rest of the default model (second trip)
# One trip may carry 64 MiB: whl + src + first is about 58 MiB, rest about 49 MiB.
#
# Usage: bash tests/gpu/prepare_carry.sh [MODEL.gguf]   (default: models/SmolLM2-135M-Instruct.Q4_1.gguf)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=${TD_PYTHON:-$REPO/../venv/bin/python}
[ -x "$PY" ] || PY=python3
MODEL=${1:-$REPO/models/SmolLM2-135M-Instruct.Q4_1.gguf}
CARRY=$REPO/.device
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$CARRY/whl" "$CARRY/src" "$CARRY/first" "$CARRY/rest"

# Not in the GPU image's package list (or not at these versions): tokendial's pins and their needs.
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$CARRY/whl" \
    pydantic==2.14.3 pydantic-core==2.50.4 annotated-types==0.8.0 typing-inspection==0.4.5 \
    typing-extensions==4.16.0 pydantic-settings==2.16.3 python-dotenv==1.2.4 platformdirs==4.14.5 \
    tomli-w==1.2.0 diskcache==5.6.3 textual==8.2.8 rich==15.0.0 markdown-it-py==4.3.0 \
    mdit-py-plugins==0.7.0 linkify-it-py==2.2.0 uc-micro-py==1.0.3 mdurl==0.1.2 pygments==2.21.0 \
    scikit-build-core==1.1.2

if [ ! -f "$CARRY/src/llama_src.tar.xz" ]; then
    "$PY" -m pip download -q --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d "$TMP"
    tar xzf "$TMP"/llama_cpp_python-0.3.36.tar.gz -C "$TMP"
    (
        cd "$TMP/llama_cpp_python-0.3.36"
        rm -rf .git .github docker docs examples tests
        cd vendor/llama.cpp
        rm -rf models docs media benches tests examples tools/ui tools/server gguf-py conversion scripts pocs \
            skills ci grammars requirements convert_*.py flake.nix build-xcframework.sh
        cd ggml/src
        rm -rf ggml-blas ggml-cann ggml-et ggml-hexagon ggml-hip ggml-metal ggml-musa ggml-opencl \
            ggml-openvino ggml-sycl ggml-virtgpu ggml-vulkan ggml-webgpu ggml-zdnn ggml-zendnn ggml-rpc
    )
    tar cJf "$CARRY/src/llama_src.tar.xz" -C "$TMP" llama_cpp_python-0.3.36
fi

"$PY" "$REPO/tests/gpu/carry_model.py" split "$MODEL" "$TMP/model" --layers 8
mv "$TMP/model/first.gguf" "$CARRY/first/"
mv "$TMP/model/rest.bin" "$TMP/model/manifest.json" "$CARRY/rest/"
du -sh "$CARRY"/whl "$CARRY"/src "$CARRY"/first "$CARRY"/rest
