"""Benchmark rows for the server backends: ``python -m tests.bench.servers [--runs N] [--out FILE]``.

1. tok/s of a reply through tokendial's llama-server backend against the server's own ``timings``
   for that same reply (target >= 0.95x), greedy (raw top-10 probabilities) and sampling
   (post-sampler probabilities);
2. the cost of a mid-reply parameter change over the server: tokens it evaluates again on the resume
   and the latency added before the next token;
3. for scale, the local engine on the same model, same prompt and threads, in the same run.

It starts its own llama-server (from ``tests.llama_tools``' build) on 127.0.0.1 with the bench's
thread count. Rounds are interleaved so that load from other jobs hits every contender alike.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from settings.sampling import SamplingParams, replace_params
from tests.bench.common import GREEDY, N_CTX, PROMPT, SAMPLING, SYSTEM_PROMPT, THREADS, Stat, model_path
from tests.bench.report import Row, machine, render, stamp
from tests.llama_tools import build_tools
from tests.servers.server_procs import llama_server
from tui.engine.backends.common import ServerConfig
from tui.engine.backends.llama_server import LlamaServerEngine
from tui.engine.events import ChatMessage, ReplyDone, TokenEvent
from tui.engine.live import LiveParams
from tui.engine.protocol import ChatEngine

SECTION = "S"
CHANGE_AT = 64
TOP_N = 10


def _reply(
    engine: ChatEngine, params: SamplingParams, change: SamplingParams | None = None
) -> tuple[ReplyDone, list[float]]:
    """One reply (changing to ``change`` after token CHANGE_AT); returns it and the token arrival times."""
    live = LiveParams(params)
    arrivals: list[float] = []
    done: ReplyDone | None = None
    for event in engine.stream_reply([ChatMessage("user", PROMPT)], live, threading.Event()):
        if isinstance(event, TokenEvent):
            arrivals.append(time.perf_counter())
            if change is not None and event.index == CHANGE_AT - 1:
                live.set(change)
        elif isinstance(event, ReplyDone):
            done = event
    assert done is not None
    return done, arrivals


def run(runs: int) -> list[Row]:
    """Measure; returns the rows."""
    tools, log = build_tools()
    if tools is None:
        raise SystemExit(f"llama.cpp tools: build failed\n{log[-2000:]}")
    model = model_path()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as logs:
        server = llama_server(tools, model, Path(logs), n_ctx=N_CTX, threads=THREADS)
        try:
            server.wait_http()
            config = ServerConfig("llama-server", server.url, top_n=TOP_N, system_prompt=SYSTEM_PROMPT)
            remote = LlamaServerEngine(config)
            from tui.engine.llama_engine import load_engine
            from tui.engine.protocol import LoadConfig

            local = load_engine(
                LoadConfig(model, n_ctx=N_CTX, n_threads=THREADS, top_n=TOP_N, system_prompt=SYSTEM_PROMPT)
            )
            ours: dict[str, list[float]] = {"greedy": [], "sampling": []}
            theirs: dict[str, list[float]] = {"greedy": [], "sampling": []}
            local_speed: list[float] = []
            reevaluated: list[float] = []
            added_ms: list[float] = []
            gaps_ms: list[float] = []
            _reply(remote, replace_params(GREEDY, max_new_tokens=8))  # warm-up
            for round_no in range(runs):
                print(f"[bench servers] round {round_no + 1}/{runs}", file=sys.stderr, flush=True)
                for mode, params in (("greedy", GREEDY), ("sampling", SAMPLING)):
                    done, _ = _reply(remote, params)
                    ours[mode].append(done.tokens_per_s)
                    theirs[mode].append(float(remote.last_timings.get("predicted_per_second", 0.0)))
                done, arrivals = _reply(remote, SAMPLING, change=replace_params(SAMPLING, temperature=0.3))
                for resume in remote.last_resumes:
                    reevaluated.append(resume.reevaluated)
                    added_ms.append(resume.added_ms)
                gaps = [b - a for a, b in itertools.pairwise(arrivals)]
                gaps_ms.append(statistics.median(gaps) * 1000.0 if gaps else float("nan"))
                local_done, _ = _reply(local, GREEDY)
                local_speed.append(local_done.tokens_per_s)
            remote.close()
            local.close()
        finally:
            server.stop()
    for mode in ("greedy", "sampling"):
        o, r = Stat.of(ours[mode]), Stat.of(theirs[mode])
        ratio = o.median / r.median if r.median > 0 else float("nan")
        pairs = Stat.of([a / b for a, b in zip(ours[mode], theirs[mode], strict=False) if b > 0])
        rows.append(
            Row(
                SECTION,
                f"llama-server backend, {mode}: tok/s through tokendial vs the server's own timings",
                o.fmt(1, " tok/s"),
                r.fmt(1, " tok/s"),
                f"{ratio:.2f}x (rounds {pairs.lo:.2f}-{pairs.hi:.2f})",
                ">= 0.95x",
                ratio >= 0.95,
                f"the same replies; n_probs {TOP_N} ({'raw' if mode == 'greedy' else 'post-sampler'})",
            )
        )
    re_stat, add_stat, gap_stat = Stat.of(reevaluated), Stat.of(added_ms), Stat.of(gaps_ms)
    rows.append(
        Row(
            SECTION,
            f"mid-reply change over llama-server (temperature at token {CHANGE_AT}): tokens re-evaluated",
            re_stat.fmt(0, " tokens"),
            f"{CHANGE_AT} reply + prompt tokens cached",
            "resume from the prompt cache",
            "a few",
            bool(re_stat.samples) and re_stat.hi <= 4,
            "the server's prompt_progress of the resumed request (processed - cached)",
        )
    )
    rows.append(
        Row(
            SECTION,
            "mid-reply parameter change over llama-server: latency added before the next token",
            add_stat.fmt(1, " ms"),
            gap_stat.fmt(1, " ms") + " (a normal token gap)",
            f"+{add_stat.median - gap_stat.median:.1f} ms" if add_stat.samples else "n/a",
            "",
            None,
            "from the change being noticed to the resumed request's first token",
        )
    )
    lo, so = Stat.of(local_speed), Stat.of(ours["greedy"])
    rows.append(
        Row(
            SECTION,
            "for scale: the local engine on the same model, greedy, same prompt and threads",
            so.fmt(1, " tok/s") + " (llama-server backend)",
            lo.fmt(1, " tok/s") + " (local)",
            f"{so.median / lo.median:.2f}x" if lo.median > 0 else "n/a",
            "",
            None,
            "information only: another process and HTTP per token vs in process",
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run and print the table."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench.servers")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    # A timeout's SIGTERM ends the run through its finally blocks: the llama-server it started (in a
    # session of its own) is stopped, not left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows = run(args.runs)
    table = render(rows, f"Server backends, {stamp()}, {machine()}, {THREADS} threads, {args.runs} rounds")
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
