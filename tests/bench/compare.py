"""Compare rows: N columns decoded in one batch vs the same N replies one after another.

``python -m tests.bench.compare [--runs N]`` prints just these rows; ``python -m tests.bench``
includes them (section 6). ``python -m tests.bench.compare rss MODE`` is the fresh-process worker
of the memory row (MODE ``one`` or ``compare3``; prints one JSON line).

- Throughput: the same parameter sets (sampling, fixed seeds, EOS ignored so every column has
  N_GEN tokens) run as one compare and as consecutive single replies; tokens over wall time, the
  prompt included on both sides (the single replies reuse the cached prompt after the first).
- Memory: peak RSS of a fresh process that loads the model and runs a 3-column compare, against
  one that runs one reply.
- Greedy agreement: over a set of prompts, how often a greedy column of a 3-column batch differs
  from the same greedy reply alone, and where (llama.cpp's kernels differ by batch shape).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from settings.sampling import SamplingParams
from tests.bench.common import GREEDY, N_CTX, N_GEN, SAMPLING, SEED, THREADS, Stat, ignore_eos, model_path
from tests.bench.report import Row, render

RATIO_TARGET = 2.0
AGREEMENT_PROMPTS = (
    "Write one sentence about the sea.",
    "What is the capital of France?",
    "Give me three tips for sleeping better.",
    "Explain what a prime number is.",
    "Write a haiku about autumn.",
    "How do I boil an egg?",
    "Name two planets and say one fact about each.",
    "Why is the sky blue?",
    "Describe a cat in two sentences.",
    "What does a compiler do?",
)
AGREEMENT_TOKENS = 64


def _engine(top_n: int = 10) -> Any:
    from tui.engine.llama_engine import load_engine
    from tui.engine.protocol import LoadConfig

    # TOKENDIAL_BENCH_THREADS=0: the engine's normal thread count (llama-cpp-python's default:
    # half the cores for one token, all of them for a batch), as the app runs it
    return load_engine(
        LoadConfig(model_path=model_path(), n_ctx=N_CTX, n_threads=THREADS or None, top_n=top_n)
    )


def _messages(prompt: str | None = None) -> list[Any]:
    from tests.bench.decode import chat_messages
    from tui.engine.events import ChatMessage

    if prompt is not None:
        return [ChatMessage("user", prompt)]
    return [ChatMessage(m["role"], m["content"]) for m in chat_messages()]


def column_sets(count: int, base: SamplingParams = SAMPLING) -> list[SamplingParams]:
    """``count`` sets on ``base``, each its own fixed seed."""
    return [base.model_copy(update={"seed": SEED + i}) for i in range(count)]


def run_batch(
    engine: Any, sets: Sequence[SamplingParams], messages: list[Any]
) -> tuple[float, list[list[int]]]:
    """One compare: (seconds, each column's tokens)."""
    from tui.engine.batch import BatchDecoder, CompareDone
    from tui.engine.events import StopKind
    from tui.engine.live import LiveParams

    decoder = BatchDecoder(engine)
    start = time.perf_counter()
    done = None
    for event in decoder.stream_compare(messages, [LiveParams(p) for p in sets], threading.Event()):
        if isinstance(event, CompareDone):
            done = event
    seconds = time.perf_counter() - start
    assert done is not None
    if any(d.stop.kind is StopKind.ERROR for d in done.dones):
        raise RuntimeError(f"compare failed: {[d.stop.label() for d in done.dones]}")
    return seconds, [list(d.token_ids) for d in done.dones]


def run_one_by_one(
    engine: Any, sets: Sequence[SamplingParams], messages: list[Any]
) -> tuple[float, list[list[int]]]:
    """The same sets as consecutive single replies: (seconds, each reply's tokens)."""
    from tui.engine.events import ReplyDone
    from tui.engine.live import LiveParams

    start = time.perf_counter()
    tokens = []
    for params in sets:
        for event in engine.stream_reply(messages, LiveParams(params), threading.Event()):
            if isinstance(event, ReplyDone):
                tokens.append(list(event.token_ids))
    return time.perf_counter() - start, tokens


def throughput_rows(runs: int, counts: Sequence[int] = (2, 3, 4), log: Any = None) -> list[Row]:
    """Section 6: batch vs one after another, interleaved rounds after a warm-up."""
    engine = _engine()
    messages = _messages()
    rows = []
    try:
        samples: dict[int, tuple[list[float], list[float]]] = {n: ([], []) for n in counts}
        for round_no in range(runs + 1):
            for n in counts:
                sets = column_sets(n)
                order = (run_batch, run_one_by_one) if round_no % 2 == 0 else (run_one_by_one, run_batch)
                results = {fn.__name__: fn(engine, sets, messages) for fn in order}
                batch_s, batch_tokens = results["run_batch"]
                single_s, single_tokens = results["run_one_by_one"]
                total = sum(len(t) for t in batch_tokens)
                if total != sum(len(t) for t in single_tokens) or total != n * N_GEN:
                    raise RuntimeError(f"token counts differ: {total} vs {[len(t) for t in single_tokens]}")
                if round_no > 0:  # round 0 warms up
                    samples[n][0].append(total / batch_s)
                    samples[n][1].append(total / single_s)
            if log:
                log(f"compare round {round_no}/{runs} done")
        for n in counts:
            ours, ref = Stat.of(samples[n][0]), Stat.of(samples[n][1])
            pairs = Stat.of([a / b for a, b in zip(samples[n][0], samples[n][1], strict=True)])
            ratio = ours.median / ref.median
            rows.append(
                Row(
                    "6",
                    f"compare: {n} columns in one batch vs the same {n} replies one after another "
                    f"(sampling, fixed seeds, {N_GEN} tokens each, tokens/s over all columns)",
                    ours.fmt(1, " tok/s"),
                    ref.fmt(1, " tok/s"),
                    f"{ratio:.2f}x (rounds {pairs.lo:.2f}-{pairs.hi:.2f})",
                    f">= {RATIO_TARGET:.1f}x" if n == 3 else "",
                    ratio >= RATIO_TARGET if n == 3 else None,
                    "wall time incl. the prompt; top-10 candidates per token in both",
                )
            )
    finally:
        engine.close()
    return rows


def agreement_row(log: Any = None) -> Row:
    """How often a greedy column (of 3 in a batch) differs from the same greedy reply alone."""
    from tui.engine.events import ReplyDone
    from tui.engine.live import LiveParams

    engine = _engine(top_n=0)
    greedy = GREEDY.model_copy(update={"max_new_tokens": AGREEMENT_TOKENS})
    differ = 0
    columns = 0
    first_diffs: list[int] = []
    try:
        for prompt in AGREEMENT_PROMPTS:
            messages = _messages(prompt)
            alone: list[int] = []
            for event in engine.stream_reply(messages, LiveParams(greedy), threading.Event()):
                if isinstance(event, ReplyDone):
                    alone = list(event.token_ids)
            _, batch = run_batch(engine, [greedy] * 3, messages)
            for tokens in batch:
                columns += 1
                if tokens != alone:
                    differ += 1
                    at = next(
                        (i for i, (a, b) in enumerate(zip(tokens, alone, strict=False)) if a != b),
                        min(len(tokens), len(alone)),
                    )
                    first_diffs.append(at)
        if log:
            log("greedy agreement done")
    finally:
        engine.close()
    where = f"first difference at token {sorted(first_diffs)}" if first_diffs else "none differed"
    return Row(
        "6",
        f"compare: greedy columns (3 per batch) that differ from the same greedy reply alone, "
        f"{len(AGREEMENT_PROMPTS)} prompts x {AGREEMENT_TOKENS} tokens",
        f"{differ}/{columns} columns",
        "",
        f"{differ / columns:.0%}",
        "",
        None,
        f"{where}; EOS ignored; batched kernels differ from single-token ones by batch shape",
    )


def rss_row(runs: int) -> Row:
    """Peak RSS of a fresh process running a 3-column compare vs one running one reply."""
    samples: dict[str, list[float]] = {"one": [], "compare3": []}
    for round_no in range(runs):
        for mode in ("one", "compare3") if round_no % 2 == 0 else ("compare3", "one"):
            out = subprocess.run(
                [sys.executable, "-m", "tests.bench.compare", "rss", mode],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            try:
                samples[mode].append(float(json.loads(out.stdout.strip().splitlines()[-1])["maxrss_mb"]))
            except (ValueError, IndexError, KeyError):
                print(f"rss worker {mode} failed: {out.stderr[-500:]}", file=sys.stderr)
    one, three = Stat.of(samples["one"]), Stat.of(samples["compare3"])
    return Row(
        "6",
        f"compare: peak RSS, load + 3-column compare vs load + one reply "
        f"({N_GEN} tokens each, n_ctx {N_CTX})",
        three.fmt(0, " MB"),
        one.fmt(0, " MB"),
        f"{three.median - one.median:+.0f} MB",
        "",
        None,
        "the compare's own context: KV cache for prompt + 3 x max new tokens (rounded up to 256) and "
        "compute buffers; the chat's context stays allocated",
    )


def _rss_worker(mode: str) -> None:
    from tests.bench.procs import _maxrss_mb

    with ignore_eos():
        engine = _engine()
        messages = _messages()
        if mode == "one":
            run_one_by_one(engine, column_sets(1), messages)
        else:
            run_batch(engine, column_sets(3), messages)
    print(json.dumps({"maxrss_mb": _maxrss_mb()}))


def compare_rows(runs: int, log: Any = None, *, agreement: bool = True) -> list[Row]:
    """Every compare row (call inside ignore_eos for the throughput rows)."""
    rows = throughput_rows(runs, log=log)
    if agreement:
        rows.append(agreement_row(log))
    rows.append(rss_row(max(1, min(runs, 3))))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the compare rows (or run the memory worker)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["rss"]:
        _rss_worker(args[1])
        return 0
    parser = argparse.ArgumentParser(prog="python -m tests.bench.compare")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-agreement", action="store_true", help="skip the greedy agreement row")
    parsed = parser.parse_args(args)
    started = time.perf_counter()
    with ignore_eos():
        rows = compare_rows(
            parsed.runs,
            log=lambda m: print(m, file=sys.stderr, flush=True),
            agreement=not parsed.skip_agreement,
        )
    threads = f"{THREADS} threads" if THREADS else "the engine's default threads (1 per token, 2 per batch)"
    header = (
        f"Compare rows, {threads}, {parsed.runs} rounds after a warm-up, median (min-max); "
        f"load average {os.getloadavg()[0]:.1f}; {time.perf_counter() - started:.0f} s."
    )
    print(render(rows, header))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
