"""Soak: many short chat turns in one process on the real model; RSS and speed, start vs end.

Run it by hand (it is not collected by pytest)::

    nice -n 10 python -m tests.soak.run --turns 1000 --json /tmp/soak.json

Every turn sends a short user message in the current chat and generates at most
``--max-new`` tokens with the default sampling settings (candidate capture on, as in the app);
every ``--new-chat-every`` turns the chat starts over. After a warm-up, the first and the last
window of turns are compared: resident memory (RSS) at the end of each window, and the median
decode speed (tokens/s of wall time) and CPU time per generated token in each window.

The machine may be shared, so wall-clock speeds swing with the load of other processes. The
verdict therefore uses CPU time per generated token (one thread by default, so no spin-waiting
inflates it): it must not grow by more than ``--limit-pct``, and RSS must stay within it too. Wall
speeds are reported as well: the window medians and a probe, the same greedy reply (fresh chat,
``--probe-tokens`` tokens) run ``--probe-runs`` times right after the warm-up and again after the
last turn, best run of each (engine mode only).

``--through app`` drives the whole app instead (headless Textual, Pilot key presses, chat store
autosave into a temporary folder, a new chat every few turns, the real engine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from settings.sampling import SamplingMode, SamplingParams
from tui.engine.events import ChatMessage, ReplyDone, StopKind, TokenEvent
from tui.engine.live import LiveParams
from tui.engine.llama_engine import LlamaEngine, load_engine
from tui.engine.protocol import LoadConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = REPO_ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPTS = (
    "Say hello.",
    "What is two plus two?",
    "Name a colour.",
    "Tell me a fruit.",
    "Why is the sky blue?",
    "Give me a word that rhymes with cat.",
    "What day comes after Monday?",
    "Write one short sentence about the sea.",
)


@dataclass(frozen=True)
class TurnStats:
    """What one turn measured."""

    turn: int
    generated: int
    stop: str
    tokens_per_s: float
    cpu_s: float
    wall_s: float
    rss_mb: float


@dataclass(frozen=True)
class WindowStats:
    """A window of turns, summarised."""

    first_turn: int
    last_turn: int
    rss_mb_end: float
    median_tokens_per_s: float
    cpu_ms_per_token: float
    wall_s: float


def rss_mb() -> float:
    """This process's resident set size now, in MiB (from /proc, or the peak where /proc is missing)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_turn(engine: LlamaEngine, history: list[ChatMessage], prompt: str, live: LiveParams) -> ReplyDone:
    """One turn: add ``prompt`` to ``history``, stream the reply, add it too; return the ReplyDone."""
    history.append(ChatMessage("user", prompt))
    events: list[TokenEvent] = []  # kept like the app keeps a reply's events
    done: ReplyDone | None = None
    for event in engine.stream_reply(tuple(history), live, threading.Event()):
        if isinstance(event, TokenEvent):
            events.append(event)
        elif isinstance(event, ReplyDone):
            done = event
    if done is None:
        raise RuntimeError("the engine ended a reply without a ReplyDone")
    history.append(ChatMessage("assistant", done.text))
    return done


def probe(engine: LlamaEngine, tokens: int, runs: int) -> float:
    """Best decode speed (tokens/s) of ``runs`` identical greedy replies of ``tokens`` tokens."""
    params = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0, max_new_tokens=tokens)
    live = LiveParams(params)
    best = 0.0
    for _ in range(runs):
        done = run_turn(engine, [], "Count from one to one hundred, in words.", live)
        best = max(best, done.tokens_per_s)
    return best


def summarise(turns: list[TurnStats]) -> WindowStats:
    """One window's figures."""
    generated = sum(t.generated for t in turns)
    speeds = [t.tokens_per_s for t in turns if t.tokens_per_s > 0]
    return WindowStats(
        first_turn=turns[0].turn,
        last_turn=turns[-1].turn,
        rss_mb_end=turns[-1].rss_mb,
        median_tokens_per_s=statistics.median(speeds) if speeds else 0.0,
        cpu_ms_per_token=1000.0 * sum(t.cpu_s for t in turns) / max(generated, 1),
        wall_s=sum(t.wall_s for t in turns),
    )


def change(start: float, end: float) -> float:
    """Relative change from ``start`` to ``end`` in percent."""
    return 100.0 * (end - start) / start if start else 0.0


class TurnLog:
    """Collects the turns of a soak run and prints progress."""

    def __init__(self, progress: int) -> None:
        self.turns: list[TurnStats] = []
        self.errors: list[str] = []
        self.progress = progress

    def add(self, turn: int, done: ReplyDone, cpu_s: float, wall_s: float) -> None:
        """Record one finished turn."""
        if done.stop.kind is StopKind.ERROR:
            self.errors.append(f"turn {turn}: {done.stop.message}")
        stats = TurnStats(
            turn, done.generated, done.stop.kind.value, done.tokens_per_s, cpu_s, wall_s, rss_mb()
        )
        self.turns.append(stats)
        if self.progress and (turn + 1) % self.progress == 0:
            print(
                f"turn {turn + 1}: rss {stats.rss_mb:.1f} MiB, {done.tokens_per_s:.1f} tok/s",
                file=sys.stderr,
                flush=True,
            )


def soak_engine(args: argparse.Namespace, log: TurnLog, warm: int) -> tuple[float, float]:
    """The turns straight on the engine; returns the speed probes (start, end)."""
    engine = load_engine(
        LoadConfig(model_path=args.model, n_ctx=args.n_ctx, n_threads=args.threads, top_n=args.top_n)
    )
    live = LiveParams(SamplingParams(max_new_tokens=args.max_new))
    history: list[ChatMessage] = []
    probe_start = 0.0
    try:
        for turn in range(args.turns):
            if turn == warm:
                probe_start = probe(engine, args.probe_tokens, args.probe_runs)
            if turn % args.new_chat_every == 0:
                history.clear()
            cpu0, wall0 = cpu_seconds(), time.perf_counter()
            done = run_turn(engine, history, PROMPTS[turn % len(PROMPTS)], live)
            log.add(turn, done, cpu_seconds() - cpu0, time.perf_counter() - wall0)
        probe_end = probe(engine, args.probe_tokens, args.probe_runs)
    finally:
        engine.close()
    return probe_start, probe_end


def soak_app(args: argparse.Namespace, log: TurnLog, data_dir: Path) -> None:
    """The turns through the whole app (headless Textual, chat store autosave on, real engine)."""
    import asyncio

    from settings.config import Settings
    from tui.app import TokendialApp

    settings = Settings(
        model_path=args.model,
        n_ctx=args.n_ctx,
        n_threads=args.threads,
        top_n=args.top_n,
        data_dir=data_dir,
        sampling=SamplingParams(max_new_tokens=args.max_new),
    )
    app = TokendialApp(settings, config_path=data_dir / "config.toml")

    def shown_finished(app: TokendialApp) -> bool:
        messages = app.chat_view.query(".assistant")
        return bool(messages) and messages.last().has_class("finished")

    async def idle(pilot: Any, condition: Any) -> None:
        while not condition():
            await pilot.pause(0.005)

    async def run() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await idle(pilot, lambda: app.model_state.value in ("ready", "failed"))
            if app.model_state.value == "failed":
                raise RuntimeError("the model did not load in the app")
            for turn in range(args.turns):
                if turn and turn % args.new_chat_every == 0:
                    await pilot.press("ctrl+n")
                    await idle(pilot, lambda: not app.chat_view.query(".message"))
                cpu0, wall0 = cpu_seconds(), time.perf_counter()
                app.prompt.text = PROMPTS[turn % len(PROMPTS)]
                await pilot.press("enter")
                await idle(pilot, lambda: not app.busy and shown_finished(app))
                done = next(reversed(app.records.values())).done
                assert done is not None
                log.add(turn, done, cpu_seconds() - cpu0, time.perf_counter() - wall0)

    asyncio.run(run())


def soak(args: argparse.Namespace) -> dict[str, object]:
    """Run the soak; return the report (also printed)."""
    log = TurnLog(args.progress)
    started = time.monotonic()
    warm = min(args.warmup, args.turns // 3)
    probe_start = probe_end = 0.0
    if args.through == "app":
        import tempfile

        with tempfile.TemporaryDirectory(prefix="tokendial-soak-") as data_dir:
            soak_app(args, log, Path(data_dir))
    else:
        probe_start, probe_end = soak_engine(args, log, warm)
    turns, errors = log.turns, log.errors
    first = summarise(turns[warm : warm + args.window])
    last = summarise(turns[-args.window :])
    stops: dict[str, int] = {}
    for t in turns:
        stops[t.stop] = stops.get(t.stop, 0) + 1
    report: dict[str, object] = {
        "through": args.through,
        "turns": len(turns),
        "threads": args.threads,
        "max_new_tokens": args.max_new,
        "new_chat_every": args.new_chat_every,
        "tokens_generated": sum(t.generated for t in turns),
        "stops": stops,
        "errors": errors,
        "total_wall_s": round(time.monotonic() - started, 1),
        "rss_mb_after_load": turns[0].rss_mb if turns else 0.0,
        "warmup_turns": warm,
        "first_window": asdict(first),
        "last_window": asdict(last),
        "rss_change_pct": round(change(first.rss_mb_end, last.rss_mb_end), 2),
        "window_tokens_per_s_change_pct": round(
            change(first.median_tokens_per_s, last.median_tokens_per_s), 2
        ),
        "probe_tokens_per_s_start": round(probe_start, 2),
        "probe_tokens_per_s_end": round(probe_end, 2),
        "tokens_per_s_change_pct": round(change(probe_start, probe_end), 2),
        "cpu_per_token_change_pct": round(change(first.cpu_ms_per_token, last.cpu_ms_per_token), 2),
    }
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the soak from the command line; exit 1 if a limit is exceeded or a turn failed."""
    parser = argparse.ArgumentParser(prog="python -m tests.soak.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, default=Path(os.environ.get("TOKENDIAL_TEST_MODEL", DEFAULT_MODEL))
    )
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--max-new", type=int, default=8)
    parser.add_argument("--new-chat-every", type=int, default=5)
    parser.add_argument("--n-ctx", type=int, default=1024)
    parser.add_argument(
        "--threads", type=int, default=1, help="1: no spin-waiting, steadier on a busy machine"
    )
    parser.add_argument(
        "--through",
        choices=("engine", "app"),
        default="engine",
        help="drive the engine directly, or the whole app (headless, chats saved)",
    )
    parser.add_argument("--top-n", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=50, help="turns left out before the first window")
    parser.add_argument("--window", type=int, default=100, help="turns per compared window")
    parser.add_argument("--probe-tokens", type=int, default=48, help="tokens per speed probe reply")
    parser.add_argument("--probe-runs", type=int, default=7, help="speed probe replies (best one counts)")
    parser.add_argument("--limit-pct", type=float, default=5.0, help="allowed change, start to end")
    parser.add_argument("--progress", type=int, default=100, help="print a line every N turns (0: never)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(f"soak: model not found: {args.model} (run `tokendial fetch`)", file=sys.stderr)
        return 2
    report = soak(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    ok = (
        not report["errors"]
        and abs(float(report["rss_change_pct"])) <= args.limit_pct  # type: ignore[arg-type]
        and float(report["cpu_per_token_change_pct"]) <= args.limit_pct  # type: ignore[arg-type]
    )
    print("soak: " + ("PASS" if ok else "FAIL") + f" (limit {args.limit_pct}%)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
