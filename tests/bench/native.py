"""Native llama.cpp reference: ``llama-bench`` from the shared tool build, run as tg256.

The build is ``tests.llama_tools``'s: the llama.cpp of the pinned llama-cpp-python sdist with the CPU
flags of ``tui/scripts/install.sh --print-cmake-args`` (the same kernels as our llama-cpp-python build,
and never an instruction set this CPU lacks), cached and reused on the next run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests import llama_tools


def find_llama_bench() -> Path | None:
    """An existing llama-bench: ``$TOKENDIAL_LLAMA_BENCH``, the shared tool build, then PATH."""
    env = os.environ.get("TOKENDIAL_LLAMA_BENCH")
    if env and Path(env).is_file():
        return Path(env)
    tools = llama_tools.find_tools()
    if tools is not None:
        return tools.bench
    found = shutil.which("llama-bench")
    return Path(found) if found else None


def build_llama_bench(jobs: int = 2) -> tuple[Path | None, str]:
    """Build the llama.cpp tools (niced, ``-j jobs``); returns (llama-bench or None, the build log)."""
    tools, log = llama_tools.build_tools(jobs)
    return (tools.bench if tools else None), log


@dataclass(frozen=True)
class NativeResult:
    """tok/s of each llama-bench repetition (tg test)."""

    samples: tuple[float, ...]
    binary: Path
    build_info: str


def run_llama_bench(
    binary: Path, model: Path, n_gen: int, threads: int, reps: int, depth: int = 0, flash_attn: str = "off"
) -> NativeResult:
    """Run ``llama-bench -p 0 -n n_gen -d depth -fa flash_attn`` and return every repetition's tok/s.

    ``depth`` tokens are in the KV cache before the timed tokens (our prompt length); the benchmark
    passes the flash attention every other contender runs with (tests.bench.common.FLASH_ATTN).
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
