"""Start-up and peak-memory workers, each run in its own fresh process.

``python -m tests.bench.procs MODE`` prints one JSON line: peak RSS (VmHWM) and,
for the app, seconds from process start to the first screen and to the loaded model.

Modes:
- ``llama-cpp-python``: ``Llama(n_ctx=N_CTX)`` + one streamed 256-token completion.
- ``engine``: our ``load_engine`` + one 256-token reply (no Textual).
- ``app``: the real ``TokendialApp`` (headless), model load, one 256-token reply typed in.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROCESS_START_ENV = "TOKENDIAL_BENCH_T0"
"""Wall-clock time (time.time()) at which the parent launched this process."""


def _maxrss_mb() -> float:
    """Peak RSS of this process: VmHWM (reset by exec), else getrusage's maxrss.

    getrusage's maxrss is not usable on Linux here: a child starts with its parent's value
    (it is kept across fork and exec), and the benchmark's parent holds several models.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _since_start() -> float:
    return time.time() - float(os.environ.get(PROCESS_START_ENV, time.time()))


def _load_and_reply(contender_class: str) -> dict[str, Any]:
    """Load one contender from tests.bench.decode and stream one reply."""
    from tests.bench import decode
    from tests.bench.common import SAMPLING, ignore_eos, model_path

    with ignore_eos():
        contender = getattr(decode, contender_class)(model_path())
        ready = _since_start()
        run = contender.run(SAMPLING)
    return {"model_ready_s": ready, "tokens": run.tokens, "tok_s": run.tok_s, "maxrss_mb": _maxrss_mb()}


def run_llama_cpp_python() -> dict[str, Any]:
    """llama-cpp-python alone: load and stream one reply."""
    return _load_and_reply("LlamaCppPythonStream")


def run_engine() -> dict[str, Any]:
    """Our engine alone: load and stream one reply."""
    return _load_and_reply("OurEngine")


def run_app() -> dict[str, Any]:
    """The real app, headless: time to first screen and to model loaded, then one reply."""
    import asyncio

    from tests.bench.common import ignore_eos
    from tests.bench.ui import startup_and_one_reply

    with ignore_eos():
        result = asyncio.run(startup_and_one_reply(_since_start))
    result["maxrss_mb"] = _maxrss_mb()
    return result


MODES = {"llama-cpp-python": run_llama_cpp_python, "engine": run_engine, "app": run_app}


def measure(mode: str, timeout: float = 180.0, threads: int | None = None) -> dict[str, Any]:
    """Run ``mode`` in a fresh interpreter and return its JSON result (or {"error": ...}).

    ``threads``: llama.cpp threads for that process (default: the benchmark's).
    """
    env = dict(os.environ)
    if threads is not None:
        env["TOKENDIAL_BENCH_THREADS"] = str(threads)
    env[PROCESS_START_ENV] = repr(time.time())
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.procs", mode],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


if __name__ == "__main__":
    print(json.dumps(MODES[sys.argv[1]]()), flush=True)
