"""Run every benchmark and print one table: ``python -m tests.bench`` (from the repo root).

Options: ``--runs N`` (rounds, default 5), ``--skip-ui``, ``--skip-native``, ``--skip-procs``,
``--skip-large-vocab``, ``--skip-compare``, ``--only startup|large-vocab``, ``--out FILE`` (also write
the table there). See the README's Benchmarks section.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import gc
import os
import sys
import time
from pathlib import Path
from typing import Any

from tests.bench import native
from tests.bench.common import (
    FA_FLAG,
    MODES,
    N_GEN,
    NOISE,
    THREADS,
    Stat,
    clean_run,
    cpu_busy,
    ignore_eos,
    model_path,
    wait_until_quiet,
)
from tests.bench.decode import (
    DecodeRun,
    LlamaCppPythonLogprobs,
    LlamaCppPythonStream,
    OurEngine,
    OurEngineTopN,
    RawDecodeLoop,
    prompt_tokens,
)
from tests.bench.report import Row, machine, render, stamp

RSS_TARGET_MB = 80.0
UI_RATIO_TARGET = 0.95
KEY_P95_TARGET_MS = 50.0
TRANSCRIPT_TOLERANCE = 0.05


def log(message: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ratio_row(
    section: str,
    measure: str,
    ours: list[float],
    ref: list[float],
    target: float,
    note: str = "",
    unit: str = " tok/s",
    missed: str = "",
) -> Row:
    """A row comparing paired samples: ratio of medians, range of the per-round ratios.

    ``missed``: what remains and why, added to the notes when the target is missed.
    """
    o, r = Stat.of(ours), Stat.of(ref)
    pairs = Stat.of([a / b for a, b in zip(ours, ref, strict=False) if b > 0])
    ratio = o.median / r.median if r.samples and r.median > 0 else float("nan")
    return Row(
        section,
        measure,
        o.fmt(1, unit),
        r.fmt(1, unit),
        f"{ratio:.2f}x (rounds {pairs.lo:.2f}-{pairs.hi:.2f})",
        f">= {target:.2f}x",
        ratio >= target,
        with_missed(note, missed, ratio >= target),
    )


def with_missed(note: str, missed: str, met: bool) -> str:
    """The row's note, plus why the target was missed (when it was and the reason is known)."""
    if met or not missed:
        return note
    return f"{note}; **missed**: {missed}" if note else f"**missed**: {missed}"


MISSED_VS_LCP = (
    "not reachable here: llama-cpp-python's own loop already decodes at llama.cpp's speed (section 2), "
    "its Python work per token is small next to the decode; with top-10 candidates on both sides see "
    "the logprobs row"
)
MISSED_VS_NATIVE = (
    "llama-bench tg does not sample: llama.cpp's sampler chain and our top-10 capture cost ~0.17 ms per "
    "token (section 3), and meanwhile llama.cpp's other thread spins; 1.00x with 1 thread"
)
MISSED_APP = (
    "each redraw is a Textual layout and render pass (~10 ms here, paced down to 4/s) that takes a core "
    "from decoding while llama.cpp's threads wait for each other; with no redraws 0.95-0.98x, and with a "
    "core left for the UI see the cores - 1 row"
)
MISSED_APP_SPARE = "redraws hold the GIL, which the engine thread needs between llama.cpp calls"
MISSED_TRANSCRIPT = (
    "the rest is scrolling, not the chat's length: the reply fits on an empty chat's screen, while any chat "
    "with something above it scrolls on every redraw and Textual re-renders the whole chat area (next row)"
)


def native_reference(allow_build: bool) -> tuple[Path | None, str]:
    """Find or build llama-bench; returns (binary, how it was found)."""
    found = native.find_llama_bench()
    if found is not None:
        return found, "cached build"
    if not allow_build:
        return None, "skipped"
    log("building llama-bench from the llama-cpp-python sdist (niced, -j2; cached afterwards)...")
    binary, text = native.build_llama_bench()
    if binary is None:
        log("llama-bench build failed, falling back to the raw decode loop:\n" + text[-2000:])
        return None, "build failed"
    return binary, "built now"


def rotated(plan: list[tuple[str, str]], round_no: int) -> list[tuple[str, str]]:
    """The plan started at a different contender each round (so none always runs first)."""
    shift = round_no % len(plan)
    return plan[shift:] + plan[:shift]


def llama_bench_run(binary: Path, model: Path, depth: int, round_no: int, what: str) -> native.NativeResult:
    """One llama-bench tg run, repeated while other processes disturb it (silently in the warm-up)."""
    return clean_run(
        lambda: native.run_llama_bench(
            binary, model, N_GEN, THREADS, reps=1, depth=depth, flash_attn=FA_FLAG
        ),
        log if round_no else None,
        what,
    )


def decode_section(runs: int, allow_native: bool, logprobs: bool = True) -> tuple[list[Row], Any]:
    """Sections 1-3: every contender interleaved, ``runs`` rounds after a warm-up round.

    Returns the rows and the loaded engine (for the overhead microbenchmark), or None.
    """
    model = model_path()
    results: dict[str, list[DecodeRun]] = {}
    rows: list[Row] = []
    lcp = LlamaCppPythonStream(model)
    raw = RawDecodeLoop(model)
    depth = len(prompt_tokens(lcp.llm))
    contenders: dict[str, Any] = {"lcp": lcp, "raw": raw}
    plan: list[tuple[str, str]] = [("lcp", "greedy"), ("lcp", "sampling"), ("raw", "greedy")]
    ours: OurEngine | None
    try:
        ours = OurEngine(model, top_n=10)
    except ImportError as exc:
        log(f"our engine is not available: {exc}")
        ours = None
    if ours is not None:
        contenders |= {"ours": ours, "ours-n0": OurEngineTopN(ours, 0), "ours-n50": OurEngineTopN(ours, 50)}
        plan += [("ours", "greedy"), ("ours", "sampling"), ("ours-n0", "sampling"), ("ours-n50", "sampling")]
        if THREADS > 1:
            contenders["ours-t1"] = OurEngine(model, top_n=10, threads=1)
            plan.append(("ours-t1", "greedy"))
    if logprobs:
        contenders["lcp-logprobs"] = LlamaCppPythonLogprobs(model)
        plan.append(("lcp-logprobs", "sampling"))
    binary, how = native_reference(allow_native)
    if binary is not None:
        plan.append(("native", "greedy"))
    native_info = ""
    for round_no in range(runs + 1):  # round 0 is the warm-up, not recorded
        for key, mode in rotated(plan, round_no):
            if key == "native":
                assert binary is not None
                res = llama_bench_run(binary, model, depth, round_no, "llama-bench")
                native_info = res.build_info
                run = DecodeRun(res.samples[0], N_GEN)
            elif round_no == 0:
                run = contenders[key].run(MODES[mode])
            else:
                contender = contenders[key]
                run = clean_run(functools.partial(contender.run, MODES[mode]), log, f"{key}/{mode}")
            if run.tokens != N_GEN:
                log(f"warning: {key}/{mode} generated {run.tokens} tokens, not {N_GEN}")
            if round_no > 0:
                results.setdefault(f"{key}/{mode}", []).append(run)
        log(f"decode round {round_no}/{runs} done" + (" (warm-up)" if round_no == 0 else ""))
    if "ours-t1" in contenders:
        contenders["ours-t1"].engine.close()
    del lcp, raw, contenders
    gc.collect()
    speed = {k: [r.tok_s for r in v] for k, v in results.items()}
    if ours is None:
        for key, samples in speed.items():
            rows.append(Row("1-2", key, "n/a", Stat.of(samples).fmt(1, " tok/s"), "", "", None, "no engine"))
        return rows, None
    for mode in MODES:
        rows.append(
            ratio_row(
                "1",
                f"decode, {mode}: ours (top-10, live params) vs llama-cpp-python "
                "create_completion(stream=True)",
                speed[f"ours/{mode}"],
                speed[f"lcp/{mode}"],
                1.10,
                missed=MISSED_VS_LCP,
            )
        )
    if "lcp-logprobs/sampling" in speed:
        rows.append(
            ratio_row(
                "1",
                "decode, sampling: ours (top-10) vs llama-cpp-python with logprobs=10 (its top-10)",
                speed["ours/sampling"],
                speed["lcp-logprobs/sampling"],
                1.10,
                "the like-for-like comparison: llama-cpp-python needs logits_all=True for logprobs",
            )
        )
    for mode in MODES:
        if binary is not None:
            rows.append(
                ratio_row(
                    "2",
                    f"decode, {mode}: ours vs native llama-bench tg{N_GEN} (depth {depth}, -fa {FA_FLAG})",
                    speed[f"ours/{mode}"],
                    speed["native/greedy"],
                    0.95,
                    f"llama-bench {how} from the llama-cpp-python sdist, commit {native_info}",
                    missed=MISSED_VS_NATIVE,
                )
            )
        else:
            rows.append(
                ratio_row(
                    "2",
                    f"decode, {mode}: ours vs raw llama_decode loop (bindings)",
                    speed[f"ours/{mode}"],
                    speed["raw/greedy"],
                    0.95,
                    "raw loop: one llama_decode per token, no sampling",
                )
            )
    if "ours-t1/greedy" in speed:
        row = ratio_row(
            "2",
            f"decode, greedy: ours with 1 thread vs ours with {THREADS} threads",
            speed["ours-t1/greedy"],
            speed["ours/greedy"],
            1.0,
            "information: what the thread count is worth on this machine",
        )
        rows.append(dataclasses.replace(row, target="", met=None))
    if binary is not None:
        rows.append(
            ratio_row(
                "2",
                "raw llama_decode loop through the bindings vs native llama-bench",
                speed["raw/greedy"],
                speed["native/greedy"],
                0.95,
                "reference: the cost of the Python bindings alone",
            )
        )
    base = Stat.of(speed["ours-n0/sampling"]).median
    for n in (10, 50):
        key = "ours/sampling" if n == 10 else f"ours-n{n}/sampling"
        per_token_us = 1e6 / Stat.of(speed[key]).median - 1e6 / base
        rows.append(
            Row(
                "3",
                f"end to end, sampling: ours top-{n} vs top-0 (capture off)",
                Stat.of(speed[key]).fmt(1, " tok/s"),
                Stat.of(speed["ours-n0/sampling"]).fmt(1, " tok/s"),
                f"{per_token_us:+.0f} us/token",
                "",
                None,
                "difference of medians: noisy, see the microbenchmark rows",
            )
        )
    return rows, ours


LARGE_VOCAB_TARGET = 0.97
MISSED_LARGE_VS_NATIVE = (
    "llama-bench tg reads no logits and samples nothing; we read all 262k each token (one compiled pass for "
    "the log-normalizer, the entropy and the top-N: ~0.15-0.2 ms in the loop, ~0.45 ms of work a token in "
    "all greedy, ~0.75 ms with the sampler chain, of a 14-16 ms token), and rounds swing by 10% here"
)
MISSED_LARGE_VS_LCP = (
    "llama-cpp-python's stream computes no candidates or entropy; its own per-token cost (a sampler over "
    "the whole vocabulary, re-detokenizing) is about what our full-vocabulary statistics cost"
)
REAL_LARGE_MODEL = "gemma-3-270m-q4_k_m.gguf"
"""A real base model with a 262k vocabulary, used when it is in models/ (see the README)."""


def large_vocab_model() -> Path:
    """``$TOKENDIAL_BENCH_LARGE_MODEL``, else models/gemma-3-270m-q4_k_m.gguf if there, else the default
    model with its vocabulary padded to 262k tokens (built offline, tests/large_vocab.py)."""
    from tests.large_vocab import build_large_vocab_model

    env = os.environ.get("TOKENDIAL_BENCH_LARGE_MODEL")
    if env:
        return Path(env)
    real = model_path().with_name(REAL_LARGE_MODEL)
    return real if real.is_file() else build_large_vocab_model(model_path())


def large_vocab_rows(runs: int, binary: Path | None) -> list[Row]:
    """Section 2b: our loop on a 150k-260k vocabulary vs llama-bench tg and llama-cpp-python's stream."""
    model = large_vocab_model()
    lcp = LlamaCppPythonStream(model)
    raw = RawDecodeLoop(model)
    depth = len(lcp.prompt)
    ours = OurEngine(model, top_n=10)
    vocab = ours.engine.info.n_vocab
    contenders: dict[str, Any] = {"lcp": lcp, "raw": raw, "ours": ours}
    plan: list[tuple[str, str]] = [(k, m) for m in MODES for k in ("ours", "lcp")] + [("raw", "greedy")]
    if binary is not None:
        plan.append(("native", "greedy"))
    speed: dict[str, list[float]] = {}
    for round_no in range(runs + 1):
        for key, mode in rotated(plan, round_no):
            if key == "native":
                assert binary is not None
                tok_s = llama_bench_run(
                    binary, model, depth, round_no, "llama-bench (large vocabulary)"
                ).samples[0]
            else:
                contender = contenders[key]
                tok_s = clean_run(functools.partial(contender.run, MODES[mode]), log, f"{key}/{mode}").tok_s
            if round_no:
                speed.setdefault(f"{key}/{mode}", []).append(tok_s)
        log(f"large-vocabulary round {round_no}/{runs} done" + (" (warm-up)" if round_no == 0 else ""))
    ours.engine.close()
    del lcp, raw, ours, contenders
    gc.collect()
    what = f"{model.name}, {vocab:,} tokens"
    rows = []
    if binary is not None:
        # The floor for any loop through the bindings: one llama_decode a token, no logits read at all.
        floor = ratio_row(
            "2b",
            f"large vocabulary ({what}): raw llama_decode loop (bindings) vs llama-bench tg{N_GEN}",
            speed["raw/greedy"],
            speed["native/greedy"],
            1.0,
            "reference: what a Python loop reaches before it reads a logit",
        )
        rows.append(dataclasses.replace(floor, target="", met=None))
    for mode in MODES:
        if binary is not None:
            rows.append(
                ratio_row(
                    "2b",
                    f"large vocabulary ({what}), {mode}: ours (top-10) vs llama-bench tg{N_GEN}",
                    speed[f"ours/{mode}"],
                    speed["native/greedy"],
                    LARGE_VOCAB_TARGET,
                    missed=MISSED_LARGE_VS_NATIVE,
                )
            )
        rows.append(
            ratio_row(
                "2b",
                f"large vocabulary ({what}), {mode}: ours (top-10) vs llama-cpp-python "
                "create_completion(stream=True)",
                speed[f"ours/{mode}"],
                speed[f"lcp/{mode}"],
                1.0,
                missed=MISSED_LARGE_VS_LCP,
            )
        )
    return rows


def overhead_rows(ours: OurEngine) -> list[Row]:
    """Section 3 microbenchmark rows."""
    from tests.bench.overhead import measure_overhead

    result = measure_overhead(ours.engine)
    rows = []
    for mode in MODES:
        for n, us in result.capture_us[mode].items():
            rows.append(
                Row(
                    "3",
                    f"candidate capture per token, {mode}, N={n}",
                    f"{us:.0f} us",
                    f"rest of the loop per token (top-0, no decode): {result.event_base_us[mode]:.0f} us",
                    f"{us:.0f} us",
                    "",
                    None,
                    "top-N with p_raw/p_final/cut_by/entropy; the loop with llama_decode taken out",
                )
            )
        rows.append(
            Row(
                "3",
                f"live-parameter checks per token, {mode}",
                f"{result.checks_us[mode]:.2f} us",
                "",
                f"{result.checks_us[mode]:.2f} us",
                "",
                None,
                "snapshot, version, cap, new-params check, cancel, context",
            )
        )
    return rows


def transcript_row(measure: str, ours: Stat, ref: Stat, note: str, missed: str = "") -> Row:
    """A section 4 row: reply speed in one chat against another, within TRANSCRIPT_TOLERANCE."""
    change = ours.median / ref.median - 1.0
    met = abs(change) <= TRANSCRIPT_TOLERANCE
    return Row(
        "4",
        measure,
        ours.fmt(1, " tok/s"),
        ref.fmt(1, " tok/s"),
        f"{change * 100:+.1f}%",
        f"within {TRANSCRIPT_TOLERANCE * 100:.0f}%",
        met,
        with_missed(note, missed, met),
    )


def ui_rows(runs: int) -> list[Row]:
    """Section 4."""
    from tests.bench.ui import ui_section
    from tui.widgets.chat_view import SHOWN_MESSAGES

    res = asyncio.run(ui_section(runs, log))
    shown = [r.shown_tok_s for r in res.app_empty]
    at_engine = [r.engine_tok_s for r in res.app_empty]
    long_shown = [r.shown_tok_s for r in res.app_long]
    rows = [
        ratio_row(
            "4",
            "reply streamed into the app (headless run_test, real engine) vs engine alone",
            shown,
            res.engine_alone,
            UI_RATIO_TARGET,
            f"app speed = tokens reaching the transcript; at the engine thread: "
            f"{Stat.of(at_engine).fmt(1, ' tok/s')}",
            missed=MISSED_APP,
        )
    ]
    p95 = res.key_p95_ms
    delays = Stat.of(res.key_delays_ms)
    rows.append(
        Row(
            "4",
            "key press while streaming: delay until the focused widget gets it (p95)",
            f"{p95:.1f} ms",
            "",
            f"p95 {p95:.1f} ms, median {delays.median:.1f}, max {delays.hi:.1f} (n={len(delays.samples)})",
            f"< {KEY_P95_TARGET_MS:.0f} ms",
            p95 < KEY_P95_TARGET_MS,
            f"apps speed during presses: {Stat.of([r.shown_tok_s for r in res.app_keys]).fmt(1, ' tok/s')}",
        )
    )
    long_stat = Stat.of(long_shown)
    measure = f"reply speed with {res.transcript_tokens} tokens in the transcript vs"
    rows.append(
        transcript_row(
            f"{measure} an empty chat",
            long_stat,
            Stat.of(shown),
            "engine given the same prompt in both (history stripped), so the difference is the UI's; "
            f"the app shows the last {SHOWN_MESSAGES} messages (the rest folded behind a bar)",
            MISSED_TRANSCRIPT,
        )
    )
    rows.append(
        transcript_row(
            f"{measure} one earlier exchange",
            long_stat,
            Stat.of([r.shown_tok_s for r in res.app_short]),
            "information: in both the transcript scrolls on every redraw (in an empty chat the reply "
            "fits on the screen), so this is the cost of the chat's length alone",
        )
    )
    return rows


def spare_core_threads() -> int | None:
    """cores - 1 when the benchmark's threads take every core (else None: the UI has a core anyway)."""
    cores = os.cpu_count() or 1
    return cores - 1 if cores > 1 and cores <= THREADS else None


def procs_rows(runs: int) -> list[Row]:
    """Section 5: fresh processes, interleaved."""
    from tests.bench.procs import measure

    samples: dict[str, list[dict[str, Any]]] = {}
    modes = ["llama-cpp-python", "engine", "app"]
    spare = spare_core_threads()
    if spare is not None:
        modes += [f"engine@{spare}", f"app@{spare}"]
    for round_no in range(runs):
        shift = round_no % len(modes)
        for mode in modes[shift:] + modes[:shift]:
            name, _, threads = mode.partition("@")
            result = measure(name, threads=int(threads) if threads else None)
            if "error" in result:
                log(f"{mode} process failed: {result['error']}")
                continue
            samples.setdefault(mode, []).append(result)
        log(f"process round {round_no + 1}/{runs} done")

    def stat(mode: str, key: str) -> Stat:
        return Stat.of([s[key] for s in samples.get(mode, []) if key in s])

    startup = startup_row(runs)

    rows = [
        Row(
            "5",
            "start-up: process start to first screen (Ready)",
            stat("app", "screen_s").fmt(2, " s"),
            "",
            stat("app", "screen_s").fmt(2, " s"),
            "",
            None,
            "headless run_test; includes Python start and imports",
        ),
        Row(
            "5",
            "start-up: process start to model ready (ModelLoaded in the app)",
            stat("app", "model_ready_s").fmt(2, " s"),
            f"llama-cpp-python Llama() loaded: {stat('llama-cpp-python', 'model_ready_s').fmt(2, ' s')}",
            stat("app", "model_ready_s").fmt(2, " s"),
            "",
            None,
            "the model loads in the engine thread after the screen is up",
        ),
    ]
    rows += startup
    app_speed, engine_speed = stat("app", "shown_tok_s"), stat("engine", "tok_s")
    rows.append(
        ratio_row(
            "4",
            "fresh processes: reply in the real app (engine loaded and run in its worker thread) "
            "vs our engine alone (main thread)",
            list(app_speed.samples),
            list(engine_speed.samples),
            UI_RATIO_TARGET,
            "one reply per process, so no thread but one ever runs llama.cpp (see the findings on OpenMP)",
            missed=MISSED_APP,
        )
    )
    if spare is not None:
        rows.append(
            ratio_row(
                "4",
                f"fresh processes, {spare} thread{'s' if spare > 1 else ''} (a core left for the UI): "
                "reply in the real app vs our engine alone",
                list(stat(f"app@{spare}", "shown_tok_s").samples),
                list(stat(f"engine@{spare}", "tok_s").samples),
                UI_RATIO_TARGET,
                f"cores - 1 threads for both; llama-cpp-python's default n_threads (cores / 2, which the "
                f"app uses unless n_threads is set) is {max((os.cpu_count() or 1) // 2, 1)} here",
                missed=MISSED_APP_SPARE,
            )
        )
    app_rss, lcp_rss, eng_rss = (
        stat("app", "maxrss_mb"),
        stat("llama-cpp-python", "maxrss_mb"),
        stat("engine", "maxrss_mb"),
    )
    delta = app_rss.median - lcp_rss.median
    rows.append(
        Row(
            "5",
            "peak RSS: the app (load + one 256-token reply) vs llama-cpp-python alone (same n_ctx)",
            app_rss.fmt(0, " MB"),
            lcp_rss.fmt(0, " MB"),
            f"{delta:+.0f} MB",
            f"<= +{RSS_TARGET_MB:.0f} MB",
            delta <= RSS_TARGET_MB,
            f"engine alone, no UI: {eng_rss.fmt(0, ' MB')} ({eng_rss.median - lcp_rss.median:+.0f} MB)",
        )
    )
    return rows


STARTUP_TARGET_S = 0.15
"""``tokendial generate`` may take at most this much longer than the bare script (Python's own
start and the settings/CLI layer; the model load is the same)."""


def startup_row(runs: int) -> list[Row]:
    """Whole-process start-up: ``tokendial generate`` of one token vs a bare llama-cpp-python script,
    and the same split at the import of pydantic-settings (the design card's settings package)."""
    from tests.bench.procs import measure_startup, startup_commands

    commands = startup_commands(model_path(), THREADS)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    names = list(commands)
    for round_no in range(runs + 1):  # round 0 warms the page cache
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed = measure_startup(commands[name])
            if elapsed is None:
                log(f"start-up: {name} failed")
            elif round_no:
                samples[name].append(elapsed)
    ours, bare = Stat.of(samples["generate"]), Stat.of(samples["llama-cpp-python"])
    floor = Stat.of(samples["llama-cpp-python + pydantic-settings"])
    delta = ours.median - bare.median
    return [
        Row(
            "5",
            "start-up, whole process: `tokendial generate` of one token vs llama-cpp-python "
            "Llama() + create_chat_completion(max_tokens=1)",
            ours.fmt(2, " s"),
            bare.fmt(2, " s"),
            f"{delta:+.2f} s",
            f"<= +{STARTUP_TARGET_S:.2f} s",
            delta <= STARTUP_TARGET_S,
            "launch to exit, same model, n_ctx, threads, system prompt and greedy; interleaved; "
            f"of the gap, importing pydantic-settings alone takes {floor.median - bare.median:+.2f} s "
            "(next row)",
        ),
        Row(
            "5",
            "start-up, split: the same bare script with `import pydantic-settings` first vs without "
            "(the least any command line parsed by pydantic-settings costs)",
            floor.fmt(2, " s"),
            bare.fmt(2, " s"),
            f"{floor.median - bare.median:+.2f} s; tokendial's own layer above it "
            f"{ours.median - floor.median:+.2f} s",
            "",
            None,
            "the rest of tokendial's layer: its settings models, the engine modules, the log capture",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the sections, print the table."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="measured rounds per contender (default 5)")
    parser.add_argument("--skip-ui", action="store_true", help="skip section 4 (the app)")
    parser.add_argument("--skip-native", action="store_true", help="do not build or run llama-bench")
    parser.add_argument("--skip-procs", action="store_true", help="skip section 5 (start-up, memory)")
    parser.add_argument("--skip-compare", action="store_true", help="skip section 6 (compare: batch rows)")
    parser.add_argument(
        "--skip-logprobs", action="store_true", help="skip llama-cpp-python with logprobs=10 (slow)"
    )
    parser.add_argument(
        "--skip-large-vocab", action="store_true", help="skip section 2b (a 262k-token vocabulary)"
    )
    parser.add_argument(
        "--only", choices=["startup", "large-vocab"], help="run just the start-up row or section 2b"
    )
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to SECONDS until other processes leave the CPUs mostly idle",
    )
    args = parser.parse_args(argv)
    model = model_path()
    if not model.is_file():
        print(
            f"model not found: {model} (run `tokendial fetch` or set TOKENDIAL_TEST_MODEL)", file=sys.stderr
        )
        return 2
    if args.wait_quiet > 0:
        wait_until_quiet(args.wait_quiet, log=log)
    busy_before = cpu_busy()
    started = time.perf_counter()
    rows: list[Row] = []
    if args.only:
        with ignore_eos():
            if args.only == "startup":
                rows += startup_row(args.runs)
            else:
                rows += large_vocab_rows(args.runs, None if args.skip_native else native.find_llama_bench())
        print(render(rows, f"Benchmark of {stamp()} on {machine()}, {THREADS} threads; {NOISE.summary()}."))
        return 0
    with ignore_eos():
        decode_rows, ours = decode_section(
            args.runs, allow_native=not args.skip_native, logprobs=not args.skip_logprobs
        )
        rows += decode_rows
        if not args.skip_large_vocab:
            log("large vocabulary (section 2b)...")
            binary = None if args.skip_native else native.find_llama_bench()
            rows += large_vocab_rows(args.runs, binary)
        if ours is not None:
            log("per-token overhead microbenchmark...")
            rows += overhead_rows(ours)
            from tests.bench.chain import chain_rows

            rows += chain_rows(ours.engine)
            ours.engine.close()
            del ours
            gc.collect()
            if not args.skip_ui:
                log("the app (section 4)...")
                rows += ui_rows(args.runs)
        if not args.skip_compare:
            from tests.bench.compare import compare_rows

            log("compare: one batch vs one reply after another (section 6)...")
            rows += compare_rows(args.runs, log)
    if not args.skip_procs:
        log("start-up and memory in fresh processes (section 5)...")
        rows += procs_rows(args.runs)
    header = (
        f"Benchmark of {stamp()} on {machine()}.\n"
        f"Model {model.name}, {THREADS} thread{'s' if THREADS != 1 else ''}, {N_GEN} new tokens per reply "
        f"(EOS ignored for every "
        f"contender), {args.runs} interleaved rounds after a warm-up; median (min-max). "
        f"Other processes kept the CPUs {busy_before:.0%} busy just before the run "
        f"(load average {os.getloadavg()[0]:.1f} at the end); "
        f"total time {time.perf_counter() - started:.0f} s. {NOISE.summary()}."
    )
    table = render(rows, header)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
