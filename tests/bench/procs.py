"""Start-up and peak-memory workers, each run in its own fresh process.

``python -m tests.bench.procs MODE`` prints one JSON line: peak RSS (VmHWM) and,
for the app, seconds from process start to the first screen and to the loaded model.

Modes:
- ``llama-cpp-python``: ``Llama(n_ctx=N_CTX)`` + one streamed 256-token completion.
- ``engine``: our ``load_engine`` + one 256-token reply (no Textual).
- ``app``: the real ``TokendialApp`` (headless), model load, one 256-token reply typed in.

:func:`measure_startup` times whole processes instead (launch to exit, one token):
``tokendial generate`` against a bare llama-cpp-python script doing the same.
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


STARTUP_PROMPT = "Say hi."

BARE_LLAMA_CPP_PYTHON = """
import sys
from llama_cpp import Llama

model, n_ctx, threads, system, prompt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:6]
llm = Llama(model_path=model, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False)
messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
reply = llm.create_chat_completion(messages, max_tokens=1, temperature=0.0)
print(reply["choices"][0]["message"]["content"])
"""
"""llama-cpp-python's own way: load, chat template, one token (greedy), print it."""


def startup_commands(model: Path, threads: int) -> dict[str, list[str]]:
    """The whole-process contenders: ``tokendial generate`` of one token, the bare script, and the bare
    script importing pydantic-settings first (what parsing settings with it costs at the least)."""
    from tests.bench.common import N_CTX, SYSTEM_PROMPT

    console = Path(sys.executable).with_name("tokendial")
    ours = [str(console)] if console.is_file() else [sys.executable, "-m", "tui.cli"]
    script_args = [str(model), str(N_CTX), str(threads), SYSTEM_PROMPT, STARTUP_PROMPT]
    bare = [sys.executable, "-c", BARE_LLAMA_CPP_PYTHON, *script_args]
    floor = [sys.executable, "-c", "import pydantic_settings\n" + BARE_LLAMA_CPP_PYTHON, *script_args]
    return {
        "generate": [
            *ours, "generate", STARTUP_PROMPT, "--model-path", str(model), "--n-ctx", str(N_CTX),
            "--n-threads", str(threads), "--system-prompt", SYSTEM_PROMPT, "--sampling.mode", "greedy",
            "--sampling.max-new-tokens", "1",
        ],
        "llama-cpp-python": bare,
        # The floor of any command line parsed by pydantic-settings (the design card's settings
        # package): the same script importing it first.
        "llama-cpp-python + pydantic-settings": floor,
    }  # fmt: skip


def measure_startup(command: list[str], timeout: float = 180.0) -> float | None:
    """Seconds from launching ``command`` to its exit (None when it failed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENDIAL_")}
    env["TOKENDIAL_CONFIG"] = str(Path(os.devnull).with_name("no-tokendial-config.toml"))  # defaults only
    root = Path(__file__).resolve().parents[2]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - start
    return elapsed if done.returncode == 0 else None


if __name__ == "__main__":
    print(json.dumps(MODES[sys.argv[1]]()), flush=True)
